"""A loaded model dressed for one run: its LoRAs set and the embeddings its prompts name loaded; what the
recipe records of them; and a read recipe's LoRAs and embeddings looked for on this machine."""

from __future__ import annotations

from dataclasses import replace

from diffusers_tui.engine.models import embeddings, loras


def dress(loaded, request, options=None) -> dict[str, list[dict]]:
    """Set `loaded` up for `request`: its LoRAs (models.loras.apply) and the embeddings its prompts name
    (models.embeddings.apply); returns what the recipe records of each, by recipe key."""
    return {"loras": loras.apply(loaded, loras.of_request(request), options),
            "embeddings": embeddings.apply(loaded, (request.prompt, request.negative_prompt), options)}


def recorded(result, dressed: dict[str, list[dict]]):
    """`result` with the LoRAs and embeddings it ran with (dress's records) in its recipe; a comparison's
    lanes likewise."""
    dressed = {key: records for key, records in dressed.items() if records}
    if not dressed:
        return result
    if hasattr(result, "lanes"):
        return replace(result, lanes=tuple(replace(lane, result=recorded(lane.result, dressed))
                                           for lane in result.lanes))
    # A batch's images are saved with recipes of their own: each gets the records too.
    return replace(result, recipe={**result.recipe, **dressed},
                   batch=tuple(replace(item, recipe={**item.recipe, **dressed}) for item in result.batch))


def matched(recipe, options=None):
    """A read recipe (files.reading.Recipe) with its LoRAs looked for in `options.lora_dirs` (models.loras.matched)
    and a note for each embedding it used that `options.embedding_dirs` lacks."""
    recipe = loras.matched(recipe, getattr(options, "lora_dirs", ()))
    notes = embeddings.missing_notes(recipe.embedding_hashes, getattr(options, "embedding_dirs", ()))
    return replace(recipe, notes=recipe.notes + tuple(notes)) if notes else recipe
