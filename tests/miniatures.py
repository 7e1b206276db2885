"""The full preset's inputs in miniature, made in the test: WikiArt in the ArtGAN layout, a randomly initialised
SDXL-refiner-shaped pipeline saved as diffusers files, and a ResNet50 state dict where torchvision looks for its
ImageNet weights. Fixtures in conftest.py; tests/test_rehearsal.py runs the `full` preset on them. And the README's
folder of one's own paintings ("Your own paintings"), 4 genres x 8 images."""
import json
from pathlib import Path

import torch
from artsim.painter import demo_painting

# the ArtGAN copy of WikiArt: genre_class.txt numbers its ten genres so
ARTGAN_GENRES = ['abstract_painting', 'cityscape', 'genre_painting', 'illustration', 'landscape', 'nude_painting',
                 'portrait', 'religious_painting', 'sketch_and_study', 'still_life']


def make_artgan(root, # the folder to write: wikiart/<Style>/<artist>_<title>.jpg and wikiart_csv/
                genres=('cityscape', 'landscape', 'portrait'), # ArtGAN genre names that are also demo genres
                per_genre:int=5, # paintings per genre above `size`'s shorter side
                small_per_genre:int=1, # paintings per genre whose shorter side is below 256 px (chapter 00 leaves them out)
                size:int=352, # the long side of the large paintings; their shorter side is at least 3/4 of it
               ) -> Path:
    "A miniature WikiArt in the ArtGAN layout: style folders of JPEGs, genre/style/artist lists, train and val splits."
    root = Path(root)
    styles, lines = ['Impressionism', 'Realism', 'Baroque'], []
    for g in genres:
        for i in range(per_genre + small_per_genre):
            style, artist = styles[i % len(styles)], f'painter-{i % 2}'
            rel = f'{style}/{artist}_{g}-{i}.jpg'
            f = root / 'wikiart' / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            demo_painting(g, 100 * ARTGAN_GENRES.index(g) + i, size if i < per_genre else 160).save(f, quality=92)
            lines.append((rel, ARTGAN_GENRES.index(g)))
    csv = root / 'wikiart_csv'
    csv.mkdir(parents=True, exist_ok=True)
    (csv / 'genre_class.txt').write_text(''.join(f'{i} {g}\n' for i, g in enumerate(ARTGAN_GENRES)))
    (csv / 'style_class.txt').write_text(''.join(f'{i} {s}\n' for i, s in enumerate(styles)))
    (csv / 'genre_train.csv').write_text(''.join(f'{r},{k}\n' for j, (r, k) in enumerate(lines) if j % 4))
    (csv / 'genre_val.csv').write_text(''.join(f'{r},{k}\n' for j, (r, k) in enumerate(lines) if not j % 4))
    return root


def make_tiny_refiner(d:Path, # a folder for the tokenizer files and the pipeline
                      variants=(None,), # the weight variants to save, e.g. (None, 'fp16') as the Hub repository has
                     ) -> Path:
    "A randomly initialised SDXL refiner-shaped img2img pipeline, saved like the real one: its folder."
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLImg2ImgPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer
    d = Path(d); d.mkdir(parents=True, exist_ok=True)
    chars = [chr(c) for c in range(33, 127)]
    vocab = {t: i for i, t in enumerate(['<|startoftext|>', '<|endoftext|>'] + chars + [c + '</w>' for c in chars])}
    (d / 'vocab.json').write_text(json.dumps(vocab))
    (d / 'merges.txt').write_text('#version: 0.2\n')
    tokenizer = CLIPTokenizer(str(d / 'vocab.json'), str(d / 'merges.txt'), model_max_length=77)
    torch.manual_seed(0)
    # the refiner's shape in miniature: text_time conditioning with 5 time ids (aesthetic score), one text encoder
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4, norm_num_groups=16,
        down_block_types=('DownBlock2D', 'CrossAttnDownBlock2D'), up_block_types=('CrossAttnUpBlock2D', 'UpBlock2D'),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type='text_time', addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1), projection_class_embeddings_input_dim=5 * 8 + 32, cross_attention_dim=32)
    vae = AutoencoderKL(block_out_channels=[16, 32], in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=16,
                        down_block_types=['DownEncoderBlock2D'] * 2, up_block_types=['UpDecoderBlock2D'] * 2, sample_size=64)
    text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=37, num_attention_heads=4,
        num_hidden_layers=2, vocab_size=len(vocab), projection_dim=32, hidden_act='gelu'))
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1, beta_schedule='scaled_linear',
                                       timestep_spacing='leading')
    pipe = StableDiffusionXLImg2ImgPipeline(vae=vae, text_encoder=None, text_encoder_2=text_encoder_2, tokenizer=None,
                                            tokenizer_2=tokenizer, unet=unet, scheduler=scheduler,
                                            requires_aesthetics_score=True, add_watermarker=False)
    for v in variants:  # the Hub's fp16 files hold half-precision weights
        pipe.to(torch.float16 if v == 'fp16' else torch.float32).save_pretrained(d / 'refiner', variant=v)
    return d / 'refiner'


IMAGENET_FILE = 'resnet50-11ad3fa6.pth'  # torchvision's ResNet50_Weights.IMAGENET1K_V2 file name


def make_imagenet_stand_in(torch_home:Path, # what TORCH_HOME will be
                           seed:int=0) -> Path:
    "A randomly initialised ResNet50 state dict where torchvision looks for its ImageNet weights: the file."
    import torchvision
    f = Path(torch_home) / 'hub' / 'checkpoints' / IMAGENET_FILE
    assert Path(torchvision.models.ResNet50_Weights.IMAGENET1K_V2.url).name == IMAGENET_FILE
    f.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), f)
    return f


def make_own_folder(src, # the folder to write: <genre>/<genre>-<i>.jpg
                    genres=('landscape', 'portrait', 'cityscape', 'still_life'), per_genre:int=8) -> Path:
    "The README's small folder of one's own paintings: 4 genres x 8 JPEGs, 256 px."
    src = Path(src)
    for g in genres:
        (src/g).mkdir(parents=True)
        for i in range(per_genre): demo_painting(g, 1000 + i, 256).save(src/g/f'{g}-{i}.jpg', quality=92)
    return src
