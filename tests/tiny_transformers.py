"""Tiny transformer pipelines, random weights, built from configs as diffusers' own tests build them.

SD3, Flux, Flux.2 klein, Qwen-Image, PixArt-Sigma, Sana and Chroma. Nothing is downloaded:
the CLIP tokenizer is the demo's; T5's and Gemma's are one piece a demo word; Qwen's is a
byte-level BPE trained here on Qwen-Image's prompt template and the demo's captions, so
the template spells 34 tokens, as the pipeline's drop index expects.
"""

from __future__ import annotations

from pathlib import Path

import torch


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


def _pieces():
    from diffusers_tui.engine.demo.shapes import caption_words

    return [(f"▁{w}", -1.0) for w in dict.fromkeys(caption_words())]

def gemma_tokenizer():
    """A Gemma tokenizer over the demo's words (Sana's text encoder is Gemma 2)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import GemmaTokenizerFast
    pieces = [("<pad>", 0.0), ("<eos>", 0.0), ("<bos>", 0.0), ("<unk>", 0.0)] + _pieces()
    core = Tokenizer(models.Unigram(pieces, unk_id=3))
    core.pre_tokenizer = pre_tokenizers.Metaspace()
    core.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    return GemmaTokenizerFast(tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                              unk_token="<unk>", model_max_length=300)

#: A ChatML template, as Qwen's tokenizers carry (Flux.2 klein applies it).
CHAT = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

#: Qwen-Image's own prompt template; its first 34 tokens are dropped after encoding.
QWEN_TEMPLATE = ("<|im_start|>system\nDescribe the image by detailing the color, shape, size, texture, quantity, text, spatial "
            "relationships of the objects and background:<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n")
def qwen_tokenizer():
    """A Qwen2 byte-level BPE tokenizer with a chat template (Qwen-Image and Flux.2 klein)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
    from transformers import Qwen2TokenizerFast
    from diffusers_tui.engine.demo.shapes import all_specs
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator([QWEN_TEMPLATE.format(s.caption) for s in all_specs()], trainer)
    tok = Qwen2TokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>", model_max_length=1024)
    tok.chat_template = CHAT
    return tok

def build_tiny_pixart_sigma(folder: Path) -> Path:
    """PixArt-Sigma: a DiT with cross-attention on T5, an SDXL-scaled VAE, a multistep solver, the legacy callback."""
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, PixArtSigmaPipeline, PixArtTransformer2DModel
    torch.manual_seed(0)
    tok = t5_tokenizer()
    transformer = PixArtTransformer2DModel(sample_size=8, num_layers=1, patch_size=2, attention_head_dim=8,
        num_attention_heads=2, caption_channels=16, in_channels=4, cross_attention_dim=16, out_channels=8,
        attention_bias=True, activation_fn="gelu-approximate", num_embeds_ada_norm=1000, norm_type="ada_norm_single",
        norm_elementwise_affine=False, norm_eps=1e-6, use_additional_conditions=False)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1,
        norm_num_groups=4, sample_size=32, scaling_factor=0.13025)
    PixArtSigmaPipeline(tokenizer=tok, text_encoder=_t5(tok), vae=vae, transformer=transformer,
                        scheduler=DPMSolverMultistepScheduler()).save_pretrained(folder)
    return folder

def build_tiny_sana(folder: Path) -> Path:
    """Sana: a linear-attention DiT on a deep-compression autoencoder (DC-AE), Gemma 2, flow matching."""
    from diffusers import AutoencoderDC, FlowMatchEulerDiscreteScheduler, SanaPipeline, SanaTransformer2DModel
    from transformers import Gemma2Config, Gemma2Model
    torch.manual_seed(0)
    tok = gemma_tokenizer()
    transformer = SanaTransformer2DModel(patch_size=1, in_channels=4, out_channels=4, num_layers=1, num_attention_heads=2,
        attention_head_dim=4, num_cross_attention_heads=2, cross_attention_head_dim=4, cross_attention_dim=8,
        caption_channels=8, sample_size=32)
    # Six stages, as Sana's own DC-AE has: 32x compression, so a 128x96 image is 4x3 latents.
    vae = AutoencoderDC(in_channels=3, latent_channels=4, attention_head_dim=2,
                        encoder_block_types=("ResBlock",) * 3 + ("EfficientViTBlock",) * 3,
                        decoder_block_types=("ResBlock",) * 3 + ("EfficientViTBlock",) * 3,
                        encoder_block_out_channels=(8,) * 6, decoder_block_out_channels=(8,) * 6,
                        encoder_qkv_multiscales=((),) * 3 + ((5,),) * 3, decoder_qkv_multiscales=((),) * 3 + ((5,),) * 3,
                        encoder_layers_per_block=(1,) * 6, decoder_layers_per_block=[1] * 6,
                        downsample_block_type="conv", upsample_block_type="interpolate", decoder_norm_types="rms_norm",
                        decoder_act_fns="silu", scaling_factor=0.41407)
    text_encoder = Gemma2Model(Gemma2Config(head_dim=16, hidden_size=8, intermediate_size=16, num_attention_heads=2,
        num_hidden_layers=1, num_key_value_heads=2, vocab_size=len(tok), max_position_embeddings=512,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id))
    SanaPipeline(tokenizer=tok, text_encoder=text_encoder, vae=vae, transformer=transformer,
                 scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0)).save_pretrained(folder)
    return folder

def build_tiny_chroma(folder: Path) -> Path:
    """Chroma: Flux's packed layout with T5 only, real classifier-free guidance and a negative prompt."""
    from diffusers import ChromaPipeline, ChromaTransformer2DModel, FlowMatchEulerDiscreteScheduler
    torch.manual_seed(0)
    tok = t5_tokenizer()
    transformer = ChromaTransformer2DModel(patch_size=1, in_channels=64, num_layers=1, num_single_layers=1,
        attention_head_dim=8, num_attention_heads=2, joint_attention_dim=16, axes_dims_rope=(2, 2, 4),
        approximator_hidden_dim=16, approximator_layers=1, approximator_num_channels=16)
    ChromaPipeline(scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=_vae16(0.3611, 0.1159), text_encoder=_t5(tok),
                   tokenizer=tok, transformer=transformer, image_encoder=None, feature_extractor=None).save_pretrained(folder)
    return folder

def build_tiny_qwen_image(folder: Path) -> Path:
    """Qwen-Image: an MMDiT on the Wan 2.1 VAE's normalised latents (its real statistics), Qwen2.5-VL, true CFG."""
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImagePipeline, QwenImageTransformer2DModel
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    torch.manual_seed(0)
    tok = qwen_tokenizer()
    transformer = QwenImageTransformer2DModel(patch_size=2, in_channels=64, out_channels=16, num_layers=1,
        attention_head_dim=16, num_attention_heads=2, joint_attention_dim=16, guidance_embeds=False, axes_dims_rope=(8, 4, 4))
    from diffusers_tui.engine.preview.latent import WAN21_MEAN_FIRST

    # Wan 2.1's published statistics (Qwen-Image's VAE has the same), so its published preview map applies.
    mean = [WAN21_MEAN_FIRST, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508, 0.4134, -0.0715, 0.5517,
            -0.3632, -0.1922, -0.9497, 0.2503, -0.2921]
    std = [2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743, 3.2687, 2.1526, 2.8652, 1.5579, 1.6382,
           1.1253, 2.8251, 1.9160]
    vae = AutoencoderKLQwenImage(base_dim=16, z_dim=16, dim_mult=[1, 2], num_res_blocks=1, temperal_downsample=[False],
                                 latents_mean=mean, latents_std=std)
    config = Qwen2_5_VLConfig(text_config={"hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 2, "vocab_size": len(tok),
        "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"}, "rope_theta": 1e6},
        vision_config={"depth": 1, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16},
        hidden_size=16, vocab_size=len(tok), vision_end_token_id=len(tok), vision_start_token_id=len(tok),
        vision_token_id=len(tok), bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    QwenImagePipeline(scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5,
        max_shift=0.9, base_image_seq_len=16, max_image_seq_len=256), vae=vae,
        text_encoder=Qwen2_5_VLForConditionalGeneration(config).eval(), tokenizer=tok, transformer=transformer).save_pretrained(folder)
    return folder

def build_tiny_flux2_klein(folder: Path) -> Path:
    """Flux.2 klein: Flux.2's transformer and batch-normed VAE, Qwen3 read at layers 9, 18 and 27."""
    from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2KleinPipeline, Flux2Transformer2DModel
    from transformers import Qwen3Config, Qwen3ForCausalLM
    torch.manual_seed(0)
    tok = qwen_tokenizer()
    transformer = Flux2Transformer2DModel(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1,
        attention_head_dim=16, num_attention_heads=2, joint_attention_dim=48, timestep_guidance_channels=32,
        axes_dims_rope=[4, 4, 4, 4], guidance_embeds=False)
    text_encoder = Qwen3ForCausalLM(Qwen3Config(intermediate_size=16, hidden_size=16, num_hidden_layers=28,
        num_attention_heads=2, num_key_value_heads=2, head_dim=8, vocab_size=len(tok), max_position_embeddings=1024,
        bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    vae = AutoencoderKLFlux2(sample_size=32, in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1, latent_channels=4,
        norm_num_groups=4, use_quant_conv=False, use_post_quant_conv=False)
    Flux2KleinPipeline(scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True),
        vae=vae, text_encoder=text_encoder.eval(), tokenizer=tok, transformer=transformer, is_distilled=False).save_pretrained(folder)
    return folder


def build_tiny_auraflow(folder: Path) -> Path:
    """AuraFlow: a transformer family outside the tested ones, for the generic adapter."""
    from diffusers import AuraFlowPipeline, AuraFlowTransformer2DModel, AutoencoderKL, FlowMatchEulerDiscreteScheduler
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    tok = t5_tokenizer()
    transformer = AuraFlowTransformer2DModel(sample_size=8, patch_size=2, in_channels=4, num_mmdit_layers=1,
                                             num_single_dit_layers=1, attention_head_dim=8, num_attention_heads=2,
                                             caption_projection_dim=16, joint_attention_dim=16, out_channels=4,
                                             pos_embed_max_size=64)
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tok), d_model=16, d_kv=4, d_ff=32, num_layers=1,
                                               num_heads=2, relative_attention_num_buckets=8, pad_token_id=0,
                                               eos_token_id=1, decoder_start_token_id=0))
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        layers_per_block=1, norm_num_groups=4, sample_size=32)
    AuraFlowPipeline(tokenizer=tok, text_encoder=text_encoder, vae=vae, transformer=transformer,
                     scheduler=FlowMatchEulerDiscreteScheduler()).save_pretrained(folder)
    return folder
