/** The anywidget entry point: `render({ model, el })`; everything is drawn from the model's traits. */
import { render } from "./view";

export default { render };
