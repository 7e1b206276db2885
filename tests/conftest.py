import os
os.environ.setdefault('MPLBACKEND', 'Agg')
# Idle OpenMP threads sleep rather than spin: two test workers (pytest-xdist) and the shared run each hold PyTorch's two
# threads of portable numerics on two cores, and spinning ones would take the cores from the working ones. Read when
# PyTorch loads, so set before anything imports it; it changes when a thread waits, not what it computes.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import shutil, signal, subprocess, sys, tempfile, time, uuid
from pathlib import Path
from types import SimpleNamespace
import pytest
from demo_pairs import make_run, stage_p
from miniatures import make_tiny_refiner

ROOT = Path(__file__).resolve().parent.parent
EXE = Path(sys.executable).parent/'artsim_reproduce'

# One run of every chapter on the tiny preset, made once per pytest run through the console script (papermill, kernels
# under the pin, the descriptors in a worker pool: `-p n_jobs=2`) and shared read-only by every test that needs a finished
# run; a test that writes copies it first. pytest's main process starts it in the background as soon as the session is
# configured, when the tests chosen include one that uses it, so that it is made while the other tests run; with
# pytest-xdist every worker waits for that same run.
TINY_ENV = 'ARTSIM_TEST_TINY'       # the folder the shared tiny run is made in: run/, out, err, rc, marker
TINY_USERS = ('test_docs.py', 'test_notebooks.py', 'test_plan.py', 'test_reproduce.py', 'test_interrupt.py',
              'test_identity.py', 'test_model_kinds.py')   # the modules that use it


def user_env(**kw) -> dict:
    "The environment of a user's shell: not under nbdev_test, no ARTSIM_RUNS (MPLBACKEND=Agg stays: the runner drops it)."
    return {k: v for k, v in os.environ.items() if k not in ('IN_TEST', 'ARTSIM_RUNS', TINY_ENV)} | kw


def _start_tiny(base:Path):
    "Start `artsim_reproduce --preset tiny` into base/run in the background; base/rc appears when it has ended."
    marker = uuid.uuid4().hex
    (base/'marker').write_text(marker)
    cmd = (f'"{EXE}" --preset tiny --run-dir "{base}/run" -p n_jobs=2 >"{base}/out" 2>"{base}/err"; '
           f'echo $? >"{base}/rc.tmp"; mv "{base}/rc.tmp" "{base}/rc"')
    # the marker is how a test finds any process this run leaves behind (a kernel, a descriptor worker)
    return subprocess.Popen(['sh', '-c', cmd], cwd=ROOT, env=user_env(ARTSIM_TEST_RUN=marker), start_new_session=True,
                            stdin=subprocess.DEVNULL)


def _wants_tiny(config) -> bool:
    if config.getoption('markexpr', '') == 'claims': return False   # make check-claims: those tests make their own runs
    args = [a.split('::')[0] for a in config.args] or [str(ROOT/'tests')]
    return any(Path(a).is_dir() or Path(a).name in TINY_USERS for a in args)


def pytest_configure(config):
    config.addinivalue_line('markers', "claims: a README command run whole, as a user types it: run by make check-claims "
                                       "(CI runs it after make demo), left out of make test")
    if hasattr(config, 'workerinput') or os.environ.get(TINY_ENV): return  # an xdist worker: the main process started it
    # Every temporary file of the session in one folder, removed when it ends: the tests', pytest's own, and those of
    # every process they start (TMPDIR is inherited), which a notebook's example or a killed process leaves behind
    # (about 1 GB a session otherwise). Kept, and named, when a test failed.
    config._artsim_tmp = Path(tempfile.mkdtemp(prefix='artsim-tests-'))
    os.environ['TMPDIR'] = str(config._artsim_tmp); tempfile.tempdir = None   # read again from TMPDIR
    base = Path(tempfile.mkdtemp(prefix='artsim-test-tiny-'))
    os.environ[TINY_ENV] = str(base)   # inherited by xdist's workers, which are started after this
    config._artsim_tiny = (base, _start_tiny(base) if _wants_tiny(config) else None)


def pytest_sessionfinish(session, exitstatus):
    session.config._artsim_passed = exitstatus in (0, 5)   # 5: no test was chosen


def pytest_unconfigure(config):
    base, proc = getattr(config, '_artsim_tiny', (None, None))
    if base is None: return
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    os.environ.pop(TINY_ENV, None)
    shutil.rmtree(base, ignore_errors=True)
    tmp = config._artsim_tmp
    if getattr(config, '_artsim_passed', False): shutil.rmtree(tmp, ignore_errors=True)
    else: print(f"\nThis session's temporary files, a failed test's among them, are kept in {tmp}", file=sys.stderr)


# The longest modules first, so that two workers end together (pytest-xdist hands whole modules out in this order with
# --dist loadscope, so that a module's fixtures are made once); the tests that need the shared tiny run go last, so that
# it is made while the others run. Measured with `make test` (pytest --durations), heaviest first.
LONG_FIRST = ('test_own_paintings.py', 'test_rehearsal.py', 'test_similarity.py', 'test_cli.py', 'test_export.py',
              'test_finetune.py', 'test_siamese.py', 'test_descriptors.py')
SHARED_LAST = ('test_interrupt.py', 'test_identity.py', 'test_reproduce.py', 'test_notebooks.py', 'test_docs.py', 'test_plan.py',
               'test_model_kinds.py')


def pytest_collection_modifyitems(config, items):
    def rank(it):
        name = it.fspath.basename
        if name in SHARED_LAST: return (2, SHARED_LAST.index(name))
        return (0, LONG_FIRST.index(name)) if name in LONG_FIRST else (1, 0)
    items.sort(key=rank)   # stable: within a module, the order of the file


@pytest.fixture(scope='session')
def tiny_run() -> SimpleNamespace:
    """Every chapter of the tiny preset through `artsim_reproduce`, shared by the whole test run: path, returncode, stdout,
    stderr, marker. Read it only; copy it (`copy_run`) to write."""
    base = Path(os.environ[TINY_ENV])
    from filelock import FileLock
    with FileLock(str(base/'start.lock')):   # started here when the main process did not (a single test file chosen)
        if not (base/'marker').exists(): _start_tiny(base)
    t0 = time.time()
    while not (base/'rc').exists():
        if time.time() - t0 > 1800: pytest.fail('the shared tiny run did not end within 30 minutes')
        time.sleep(0.5)
    r = SimpleNamespace(path=base/'run', returncode=int((base/'rc').read_text()), stdout=(base/'out').read_text(),
                        stderr=(base/'err').read_text(), marker=(base/'marker').read_text())
    assert r.returncode == 0, f'the shared tiny run failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    return r


def copy_run(src, dst) -> Path:
    "A copy of the finished run `src` at `dst`, for a test that writes into it."
    shutil.copytree(src, dst, symlinks=True)
    return Path(dst)


@pytest.fixture(scope='session')
def demo_root(tmp_path_factory):
    "A demo-like run directory: 40 paintings at 128 px, 320 variants (2 prompts x 4 strengths)."
    return make_run(tmp_path_factory.mktemp('run'))


@pytest.fixture(scope='session')
def described_root(demo_root):
    "`demo_root` after the descriptors stage (demo preset, all families, random-init ResNet50)."
    import warnings
    from artsim.runs import Run
    from artsim.descriptors import stage
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # random-init ResNet50 warns by design
        stage(Run(demo_root), stage_p('descriptors'))
    return demo_root


@pytest.fixture(scope='session')
def tiny_refiner(tmp_path_factory):
    "A randomly initialised SDXL refiner-shaped pipeline saved as diffusers files, in float32 and as the fp16 variant."
    import logging
    from diffusers.utils import logging as dlog
    level = dlog.get_verbosity(); dlog.set_verbosity(logging.ERROR)  # casting a fresh model to fp16 warns about it
    try: return make_tiny_refiner(tmp_path_factory.mktemp('tiny-refiner'), variants=(None, 'fp16'))
    finally: dlog.set_verbosity(level)
