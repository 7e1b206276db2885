"""Generation benchmark, GPU: SDXL Refiner 1.0's UNet at 1024x1024, fp16 + SDPA in batches of 1 and 4,
against a naive fp32, one-image-at-a-time loop measured in the same run.

    python benchmarks/bench_refiner_gpu.py [--steps 5] [--batches 1 4]
    python benchmarks/bench_refiner_gpu.py --cpu-smoke    # checks the script itself on a miniature UNet, on CPU

The network is built from the refiner's published UNet configuration (below) with random weights: the
cost of a forward pass does not depend on the weight values, so no download is needed. The UNet is
what img2img spends its time in (one forward per denoising step, on the conditional and unconditional
halves of classifier-free guidance, hence a UNet batch of 2 per image); the text encoder and VAE run
once per image and are left out. Without CUDA the script says so and exits with status 0.
Results are printed and written to benchmarks/results/refiner_gpu.json.
"""
import argparse, json, sys, time
from pathlib import Path

import torch

# stabilityai/stable-diffusion-xl-refiner-1.0, unet/config.json (diffusers' names; sgm's sd_xl_refiner.yaml:
# model_channels 384, channel_mult [1, 2, 4, 4], attention at 2x and 4x downsampling, transformer_depth 4,
# num_head_channels 64, context_dim 1280, adm_in_channels 2560)
REFINER_UNET = dict(
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=[384, 768, 1536, 1536],
    down_block_types=['DownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
    up_block_types=['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'UpBlock2D'],
    mid_block_type='UNetMidBlock2DCrossAttn', attention_head_dim=[6, 12, 24, 24], transformer_layers_per_block=4,
    cross_attention_dim=1280, use_linear_projection=True, addition_embed_type='text_time',
    addition_time_embed_dim=256, projection_class_embeddings_input_dim=2560, norm_num_groups=32,
    act_fn='silu', flip_sin_to_cos=True, freq_shift=0, upcast_attention=False)

# the same wiring in miniature, for --cpu-smoke
TINY_UNET = dict(REFINER_UNET, sample_size=16, block_out_channels=[32, 32, 64, 64], attention_head_dim=[2, 2, 4, 4],
                 transformer_layers_per_block=1, cross_attention_dim=32, addition_time_embed_dim=8,
                 projection_class_embeddings_input_dim=32 + 5 * 8, norm_num_groups=16)


def unet_inputs(cfg:dict, images:int, side:int, dtype, device) -> dict:
    "A denoising step's inputs for `images` images of `side` px with classifier-free guidance (UNet batch 2 x images)"
    b, lat = 2 * images, side // 8
    text = cfg['projection_class_embeddings_input_dim'] - 5 * cfg['addition_time_embed_dim']
    time_ids = torch.tensor([side, side, 0, 0, 6.0], device=device, dtype=dtype).repeat(b, 1)  # size, crop, aesthetic score
    return dict(sample=torch.randn(b, 4, lat, lat, device=device, dtype=dtype), timestep=torch.tensor(500, device=device),
                encoder_hidden_states=torch.randn(b, 77, cfg['cross_attention_dim'], device=device, dtype=dtype),
                added_cond_kwargs=dict(text_embeds=torch.randn(b, text, device=device, dtype=dtype), time_ids=time_ids))


def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize()


@torch.inference_mode()
def images_per_s(unet, cfg, batch:int, side:int, steps:int, dtype, device, warmup:int=2) -> float:
    "UNet denoising steps per second, per image, at `batch` images per forward"
    x = unet_inputs(cfg, batch, side, dtype, device)
    for _ in range(warmup): unet(**x)
    sync(device); t0 = time.perf_counter()
    for _ in range(steps): unet(**x)
    sync(device)
    return batch * steps / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--steps', type=int, default=5, help='timed UNet forwards per setting (after 2 warm-up ones)')
    ap.add_argument('--batches', type=int, nargs='+', default=[1, 4], help='fp16 + SDPA batch sizes (images)')
    ap.add_argument('--side', type=int, default=1024, help='image side in pixels')
    ap.add_argument('--cpu-smoke', action='store_true', help='run a miniature UNet on CPU to check the script')
    a = ap.parse_args()
    from diffusers import UNet2DConditionModel
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    if a.cpu_smoke: cfg, device, side, half = TINY_UNET, torch.device('cpu'), 64, torch.bfloat16
    elif not torch.cuda.is_available():
        print("No CUDA GPU here: bench_refiner_gpu.py measures SDXL Refiner 1.0's UNet on a GPU and has nothing to do. "
              "Run it on a machine with CUDA (or `--cpu-smoke` to check the script on a miniature UNet).")
        return 0
    else: cfg, device, side, half = REFINER_UNET, torch.device('cuda'), a.side, torch.float16
    torch.backends.cuda.matmul.allow_tf32 = False  # the naive loop is plain fp32
    torch.backends.cudnn.allow_tf32 = False

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**cfg).to(device).eval()
    params = sum(p.numel() for p in unet.parameters())
    res = dict(device=torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu (smoke test, miniature UNet)',
               torch=torch.__version__, side=side, unet_params=params, steps_timed=a.steps, unit='UNet steps per second per image')
    print(f"{res['device']}: UNet with {params / 1e9:.2f} B parameters, {side}x{side}, classifier-free guidance")

    unet.set_attn_processor(AttnProcessor())  # naive: fp32, attention as explicit matmuls, one image at a time
    res['naive_fp32_batch1'] = naive = images_per_s(unet, cfg, 1, side, a.steps, torch.float32, device)
    print(f"naive fp32, batch 1: {naive:.3f} steps/s/image")

    unet = unet.to(half); unet.set_attn_processor(AttnProcessor2_0())
    if device.type == 'cuda': torch.cuda.empty_cache()
    for b in a.batches:
        v = images_per_s(unet, cfg, b, side, a.steps, half, device)
        res[f'fp16_sdpa_batch{b}'] = v
        res[f'fp16_sdpa_batch{b}_vs_naive'] = v / naive
        print(f"{str(half).removeprefix('torch.')} + SDPA, batch {b}: {v:.3f} steps/s/image = {v / naive:.2f}x naive")
    if device.type == 'cuda': res['peak_memory_gib'] = torch.cuda.max_memory_allocated() / 2**30
    out = Path(__file__).parent / 'results' / ('refiner_gpu_smoke.json' if a.cpu_smoke else 'refiner_gpu.json')
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print('wrote', out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
