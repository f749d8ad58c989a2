/** A model with anywidget's interface backed by a plain object: no kernel, no comm. */
type Handler = (...args: unknown[]) => void;

export function localModel(state: Record<string, unknown>) {
  const handlers = new Map<string, Set<Handler>>();
  return {
    get: (key: string) => state[key],
    set(key: string, value: unknown) {
      if (state[key] === value) return;
      state[key] = value;
      for (const handler of handlers.get(`change:${key}`) ?? []) handler();
    },
    on(event: string, handler: Handler) {
      if (!handlers.has(event)) handlers.set(event, new Set());
      handlers.get(event)?.add(handler);
    },
    off(event?: string | null, handler?: Handler | null) {
      if (!event) handlers.clear();
      else if (!handler) handlers.delete(event);
      else handlers.get(event)?.delete(handler);
    },
    save_changes() {},
    send() {},
    widget_manager: { get_model: () => Promise.reject(new Error("no widget manager without a kernel")) },
  };
}
