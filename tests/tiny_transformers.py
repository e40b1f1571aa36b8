"""Tiny transformer pipelines (SD3, Flux), random weights, built from configs as diffusers' own tests build them.

Nothing is downloaded: the CLIP tokenizer is the demo's, and T5's is a word-level tokenizer
built here over the demo's words.
"""

from __future__ import annotations

from pathlib import Path


def t5_tokenizer():
    """A T5 tokenizer over the demo's caption words, one piece a word, with T5's pad and end tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    from diffusers_tui.engine.demo.shapes import caption_words

    # T5's own kind of model (Unigram): transformers rebuilds a T5 tokenizer from its pieces on load.
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(f"▁{word}", -1.0) for word in dict.fromkeys(caption_words())]
    core = Tokenizer(models.Unigram(pieces, unk_id=2))
    core.pre_tokenizer = pre_tokenizers.Metaspace()
    core.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return T5TokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                           extra_ids=0, model_max_length=16)


def _t5(tokenizer, width: int = 16):
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(vocab_size=len(tokenizer), d_model=width, d_kv=4, d_ff=32, num_layers=1,
                                   num_heads=2, relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1,
                                   decoder_start_token_id=0))


def _clip(tokenizer, projection: bool):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                            num_attention_heads=2, max_position_embeddings=16, projection_dim=16,
                            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                            pad_token_id=tokenizer.pad_token_id, hidden_act="gelu")
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def _vae16(scaling: float, shift: float):
    """A 16-channel VAE with the family's real scaling and shift (so its published latent map applies)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=16, block_out_channels=(8, 16),
                         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                         layers_per_block=1, norm_num_groups=4, sample_size=32, scaling_factor=scaling,
                         shift_factor=shift, use_quant_conv=False, use_post_quant_conv=False)


def build_tiny_sd3(folder: Path) -> Path:
    """Stable Diffusion 3's layout: an MMDiT on 16-channel latents, two CLIP encoders and T5."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    from diffusers_tui.engine.demo.train import build_tokenizer

    torch.manual_seed(0)
    tokenizer, t5_tok = build_tokenizer(), t5_tokenizer()
    transformer = SD3Transformer2DModel(sample_size=16, patch_size=2, in_channels=16, num_layers=1,
                                        attention_head_dim=8, num_attention_heads=2, caption_projection_dim=16,
                                        joint_attention_dim=32, pooled_projection_dim=32, out_channels=16)
    StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=_vae16(1.5305, 0.0609),
        text_encoder=_clip(tokenizer, True), tokenizer=tokenizer, text_encoder_2=_clip(tokenizer, True),
        tokenizer_2=tokenizer, text_encoder_3=_t5(t5_tok, 32), tokenizer_3=t5_tok,
    ).save_pretrained(folder)
    return folder


def build_tiny_flux(folder: Path) -> Path:
    """Flux's layout: packed 2x2 latent patches, a distilled guidance embedding, CLIP and T5 encoders."""
    import torch
    from diffusers import FluxPipeline, FluxTransformer2DModel, FlowMatchEulerDiscreteScheduler

    from diffusers_tui.engine.demo.train import build_tokenizer

    torch.manual_seed(0)
    tokenizer, t5_tok = build_tokenizer(), t5_tokenizer()
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=64, num_layers=1, num_single_layers=1,
                                         attention_head_dim=8, num_attention_heads=2, joint_attention_dim=16,
                                         pooled_projection_dim=16, guidance_embeds=True, axes_dims_rope=(2, 2, 4))
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                                base_image_seq_len=16, max_image_seq_len=256)
    FluxPipeline(transformer=transformer, scheduler=scheduler, vae=_vae16(0.3611, 0.1159), text_encoder=_clip(tokenizer, False),
                 tokenizer=tokenizer, text_encoder_2=_t5(t5_tok), tokenizer_2=t5_tok).save_pretrained(folder)
    return folder
