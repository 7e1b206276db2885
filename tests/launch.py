"""Starting a script as one process or as several under torchrun (gloo on the CPU), as the sharding tests do."""
import os, socket, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child_env() -> dict:
    "The environment of a child process: this checkout's artsim, one thread, offline, no progress bars."
    return {**os.environ, 'PYTHONPATH': f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", 'OMP_NUM_THREADS': '1',
            'HF_HUB_OFFLINE': '1', 'TOKENIZERS_PARALLELISM': 'false', 'TQDM_DISABLE': '1'}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def launch(script, args:list, nproc:int, timeout:int=170) -> str:
    "Run `script args` as `nproc` processes (torchrun for more than one); its stdout, after checking it exited 0."
    torchrun = ([] if nproc == 1 else ['-m', 'torch.distributed.run', '--nproc_per_node', str(nproc),
                                       '--master_addr', '127.0.0.1', '--master_port', str(free_port())])
    res = subprocess.run([sys.executable, *torchrun, str(script), *map(str, args)], env=child_env(),
                         capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout
