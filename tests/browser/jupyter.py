"""A JupyterLab server on 127.0.0.1 in a scratch directory, and a client of the kernels it starts."""

from __future__ import annotations

import json
import os
import pathlib
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "browser"

PIPELINE = """\
import torch
import daam_widget.toy
from daam_widget import DaamWidget

torch.set_num_threads(1)
pipe = daam_widget.toy.load_pipeline()
pipe.set_progress_bar_config(disable=True)
PROMPT = "a red circle and a blue square"
"""


def notebook(cells: list[str]) -> dict:
    """An nbformat 4 notebook of code cells with a python3 kernelspec."""
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "cells": [
            {
                "cell_type": "code",
                "id": f"c{i}",
                "metadata": {},
                "source": s,
                "outputs": [],
                "execution_count": None,
            }
            for i, s in enumerate(cells)
        ],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scratch_env(root: pathlib.Path) -> dict[str, str]:
    """Environment for a server and its kernels that reads no user settings and can import the repo."""
    env = dict(os.environ)
    for name in ("config", "runtime", "ipython", "settings", "workspaces", "data"):
        (root / name).mkdir(parents=True, exist_ok=True)
    env.update(
        JUPYTER_CONFIG_DIR=str(root / "config"),
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
        IPYTHONDIR=str(root / "ipython"),
        JUPYTERLAB_SETTINGS_DIR=str(root / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(root / "workspaces"),
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        OMP_NUM_THREADS="1",
        TRANSFORMERS_VERBOSITY="error",
        PYTHONWARNINGS="ignore",
    )
    return env


@dataclass(frozen=True)
class Server:
    """A running Jupyter server: its URL, its random token, and its scratch root."""

    url: str
    token: str
    root: pathlib.Path

    def page(self, path: str) -> str:
        """The URL of a page of the server (``lab/tree/x.ipynb``, ``notebooks/x.ipynb``) with the token."""
        return f"{self.url}/{path}?token={self.token}"

    def api(self, path: str) -> Any:
        request = urllib.request.Request(
            f"{self.url}/api/{path}", headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)


@contextmanager
def jupyter_server(
    root: pathlib.Path, save_widget_state: bool = False, lab_settings: bool = True, theme: str | None = None
) -> Iterator[Server]:
    """``jupyter lab`` (JupyterLab 4 and Notebook 7 share it) on 127.0.0.1, a free port and a random token,
    serving ``root/work``.

    ``lab_settings`` writes JupyterLab-only settings (Notebook 7 has no such plugin and fails to load them).
    ``save_widget_state`` turns on the widget manager's "save widget state" setting, so that saving a
    notebook writes the widgets' state into its metadata (what nbconvert renders without a kernel).
    ``theme``: JupyterLab's theme by name ("JupyterLab Dark").
    """
    port, token = free_port(), secrets.token_hex(16)
    (root / "work").mkdir(parents=True, exist_ok=True)
    settings = {}
    if lab_settings:  # no "get notified about news?" popup over the page in JupyterLab
        settings["@jupyterlab/apputils-extension/notification"] = {"fetchNews": "false"}
    if save_widget_state:
        settings["@jupyter-widgets/jupyterlab-manager/plugin"] = {"saveState": True}
    if theme is not None:
        settings["@jupyterlab/apputils-extension/themes"] = {"theme": theme}
    for name, values in settings.items():
        path = root / "settings" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = scratch_env(root)
    env["JUPYTER_TOKEN"] = token  # not on the command line, where other users could read it
    log = open(root / "server.log", "w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--ServerApp.root_dir={root / 'work'}",
            "--allow-root",
            "--LabApp.expose_app_in_browser=True",
            "--JupyterNotebookApp.expose_app_in_browser=True",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}", token, root)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                server.api("status")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"jupyter lab did not start: {(root / 'server.log').read_text()}"
                    ) from None
                time.sleep(0.5)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


class Kernel:
    """A second client of a kernel the server started: runs code in the notebook's own namespace."""

    def __init__(self, server: Server, path: str) -> None:
        from jupyter_client import BlockingKernelClient

        kernel_id = next(s["kernel"]["id"] for s in server.api("sessions") if s["path"].endswith(path))
        self.client = BlockingKernelClient()
        self.client.load_connection_file(str(server.root / "runtime" / f"kernel-{kernel_id}.json"))
        self.client.start_channels()

    def eval(self, expression: str, timeout: float = 60) -> str:
        """``repr`` of an expression evaluated in the kernel."""
        out: list[str] = []

        def hook(msg: dict) -> None:
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append("\n".join(msg["content"]["traceback"]))

        self.client.execute_interactive(f"print(repr({expression}))", output_hook=hook, timeout=timeout)
        return "".join(out).strip()

    def close(self) -> None:
        self.client.stop_channels()
