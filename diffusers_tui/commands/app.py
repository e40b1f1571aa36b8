"""`diffusers-tui` with no command: the app, on the model, settings and --from recipe given."""

from __future__ import annotations

import sys
import threading

from diffusers_tui.commands.common import engine_for, recipe_of, say, warn


def run(args, settings) -> int:
    from diffusers_tui.ui import graphics

    engine = engine_for(args, tuple(args.models_dir))
    recipe = recipe_of(args, engine)  # a bad --from ends here, before the terminal is asked anything
    model = args.model
    if recipe is not None and "model" not in settings.pinned:
        model = recipe.fields.get("model", model)
    # Asking the terminal which graphics it has must happen before the app takes stdin. It
    # is mostly waiting for answers (0.1 s per question when none comes), so it runs in a
    # thread while this one imports the app.
    chosen: list[str] = []
    probe = threading.Thread(target=lambda: chosen.append(graphics.choose(args.graphics, warn=warn)),
                             name="graphics-probe", daemon=True)
    probe.start()
    from diffusers_tui.ui.app import DiffusersTuiApp

    probe.join()
    app = DiffusersTuiApp(engine, outputs_dir=args.outputs, model=model, settings=settings, recipe=recipe,
                          graphics=chosen[0] if chosen else "halfblock")
    app.run()
    # An app that died on an error must not look like a clean quit to a script or a shell.
    failure = getattr(app, "_exception", None)
    if failure is not None or (app.return_code or 0) != 0:
        if failure is not None:
            say(f"diffusers-tui: the app stopped on an error: {type(failure).__name__}: {failure}", file=sys.stderr)
        return app.return_code or 1
    return 0
