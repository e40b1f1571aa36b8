"""`diffusers-tui` with no command: the app, on the model, settings and --from recipe given."""

from __future__ import annotations

from diffusers_tui.commands.common import engine_for, recipe_of, warn


def run(args, settings) -> int:
    from diffusers_tui.ui import graphics

    engine = engine_for(args, tuple(args.models_dir))
    recipe = recipe_of(args, engine)
    # Asks the terminal: must happen before the app takes stdin.
    kind = graphics.choose(args.graphics, warn=warn)
    model = args.model
    if recipe is not None and "model" not in settings.pinned:
        model = recipe.fields.get("model", model)
    from diffusers_tui.ui.app import DiffusersTuiApp

    app = DiffusersTuiApp(engine, outputs_dir=args.outputs, model=model, settings=settings, recipe=recipe,
                          graphics=kind)
    app.run()
    return app.return_code or 0
