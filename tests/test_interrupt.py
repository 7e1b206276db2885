"""A chapter stopped in the middle of its work, by SIGKILL (the machine, the OOM killer, `kill -9`) or SIGINT (Ctrl-C in
the terminal: the whole foreground process group), then run again with the same command: the rerun completes, writes
what an uninterrupted run wrote, leaves no temporary files, and the chapters after it stay done. No process of the
stopped run outlives it. The uninterrupted run is the session's shared tiny run (conftest.py); each test works on a copy
of it with one chapter undone.

Each chapter runs here as `artsim.reproduce.chapter_identity` declares it may: with other values of its `EXECUTION_ONLY`
parameters than the shared run's, in a copy that holds only the artifacts of the stages it `READS` (their reports
removed too). So the same rerun also checks those declarations: a setting that only changes how fast a chapter runs,
or an artifact it does not declare, must not change what it writes (test_identity.py checks the rest of the
identity)."""
import json, os, re, shutil, signal, subprocess, sys, time, uuid
from pathlib import Path
import pytest

from artsim.runs import STAGES, Run, artifact_stage, interrupted_writes
from artsim.stages import content_files, stage_reads, _declared
from conftest import ROOT, EXE, copy_run, user_env
from runfiles import differ
from test_reproduce import _processes_with

CHAPTERS = {'02': ('02_descriptors', 'descriptors'), '04': ('04_finetune', 'finetune'), '06': ('06_training', 'training')}
# each chapter's execution-only settings, other than the shared run's (`-p n_jobs=2`, the tiny preset's chunk_size=256
# and num_workers=0): the descriptors still in a worker pool, the genre training with a loader worker process
OTHER_SETTINGS = {'02': ['n_jobs=3', 'chunk_size=3'], '04': ['num_workers=1'], '06': []}   # 06 has none


# the command as a terminal starts it: Ctrl-C neither blocked nor ignored, whatever this test process's other tests left
# in its signal mask (a child inherits the mask of the thread that starts it); then the command itself, same pid
AS_FROM_A_TERMINAL = [sys.executable, '-c', 'import os, signal, sys; signal.pthread_sigmask(signal.SIG_UNBLOCK, '
                      '{signal.SIGINT}); signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])']


def _status(out:str) -> dict:
    "chapter -> 'ran' or 'skipped', from the runner's console lines (a chapter's warnings are indented under it)."
    return {l.split()[0]: l.split()[1] for l in out.splitlines()[1:-1] if not l.startswith('    ')}


def stage_cell(nb:Path) -> tuple:
    "(number, seconds) of the cell of an executed chapter that calls its stage, numbered as papermill's log counts cells."
    cells = json.loads(nb.read_text(encoding='utf-8'))['cells']
    i = next(i for i, c in enumerate(cells) if c['cell_type'] == 'code'
             and re.search(r'^(\w+ = )?stage\(run, p\)$', ''.join(c['source']), re.M))
    return i + 1, cells[i]['metadata']['papermill']['duration']


def started(log:Path) -> list:
    "The numbers of the cells papermill has started, in order, from the chapter's log (which only grows while it runs)."
    return [int(n) for n in re.findall(r'Executing Cell (\d+)-', log.read_text(encoding='utf-8'))] if log.exists() else []


def undo(run:Path, name:str, stage:str):
    "Take chapter `name` back out of a finished run: its done-record and every artifact its stage writes."
    (run/'.done'/f'{name}.json').unlink()
    for f in (run/'notebooks'/f'{name}.ipynb', run/'logs'/f'{name}.log'): f.unlink()   # the runner writes them again
    for f in [f for f in run.rglob('*') if f.is_file() and artifact_stage(f.relative_to(run).as_posix()) == stage]: f.unlink()


@pytest.mark.skipif(not Path('/proc/self/environ').exists(), reason='reads /proc')
# each chapter with one signal, each signal in more than one chapter: the descriptors' worker pool killed outright, the
# genre training stopped by Ctrl-C, the Siamese training killed outright
@pytest.mark.parametrize('chapter, sig', [('02', signal.SIGKILL), ('04', signal.SIGINT), ('06', signal.SIGKILL)],
                         ids=['02-SIGKILL', '04-SIGINT', '06-SIGKILL'])
def test_a_stopped_chapter_reruns_to_what_an_uninterrupted_run_wrote(tiny_run, tmp_path, chapter, sig):
    "Stopped, then run again with other execution-only settings from its declared reads alone: the shared run's files."
    name, stage = CHAPTERS[chapter]
    run = copy_run(tiny_run.path, tmp_path/'run')
    made = sorted(f.relative_to(run).as_posix() for f in run.rglob('*')
                  if f.is_file() and artifact_stage(f.relative_to(run).as_posix()) == stage)
    assert made, f'the tiny run has no artifacts of {stage}'
    undo(run, name, stage)
    keep = set(stage_reads(stage, Run(run).params(stage)))
    gone = [f for f in content_files(run, [s for s in STAGES if s not in keep])] + \
           [r for s in keep for r in _declared(s, 'REPORTS') if (run/r).exists()]
    for f in gone: (run/f).unlink()
    assert gone
    cell, secs = stage_cell(tiny_run.path/'notebooks'/f'{name}.ipynb')
    marker = uuid.uuid4().hex
    shared = [str(EXE), '--preset', 'tiny', '--run-dir', str(run), '-p', 'n_jobs=2']   # the shared run's own command
    cmd = shared + [a for s in OTHER_SETTINGS[chapter] for a in ('-p', s)] + ['--only', chapter]
    p = subprocess.Popen(AS_FROM_A_TERMINAL + cmd, cwd=ROOT, env=user_env(ARTSIM_TEST_RUN=marker), text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    log = run/'logs'/f'{name}.log'
    try:   # wait for the chapter's stage to start; then stop it in the middle of its work
        t0 = time.time()
        while cell not in started(log):
            assert p.poll() is None and time.time() - t0 < 300, f'{name} never reached its cell {cell}: {p.communicate()}'
            time.sleep(0.02)
        time.sleep(min(secs / 3, 2.0))   # into its work (the shared run's time was taken beside the other tests)
        assert max(started(log)) == cell, f'{name} finished its stage before it was stopped'
        if sig == signal.SIGKILL: os.kill(p.pid, sig)   # the runner alone, as the OOM killer would
        else: os.killpg(p.pid, sig)                     # Ctrl-C: the terminal signals its foreground group
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None: os.killpg(p.pid, signal.SIGKILL)
    if sig == signal.SIGINT:
        assert p.returncode == 130 and f'{name}  STOPPED' in out, (p.returncode, out, err, 'this process: SIGINT '
                                                                   f'{signal.getsignal(signal.SIGINT)}, blocked '
                                                                   f'{signal.pthread_sigmask(signal.SIG_BLOCK, [])}')
        assert err.strip() == ('artsim_reproduce: interrupted; run the same command again to go on where it stopped'), err
    else: assert p.returncode == -signal.SIGKILL
    t0 = time.time()
    while (left := _processes_with(f'ARTSIM_TEST_RUN={marker}')) and time.time() - t0 < 30: time.sleep(0.2)
    assert not left, left   # the kernel and the descriptors' workers end with the runner
    assert not list(ROOT.glob('kernel-ipc-*'))   # nor do its sockets stay in the working directory
    assert not (run/'.done'/f'{name}.json').exists()   # not done: the next run does it

    again = subprocess.run(cmd, cwd=ROOT, env=user_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _status(again.stdout) == {name: 'ran'}, again.stdout
    assert sorted(f.relative_to(run).as_posix() for f in run.rglob('*')
                  if f.is_file() and artifact_stage(f.relative_to(run).as_posix()) == stage) == made
    assert not differ(tiny_run.path, run, made), differ(tiny_run.path, run, made)
    assert not interrupted_writes(run), interrupted_writes(run)   # what the kill left was cleared before the rerun
    for f in gone: shutil.copy2(tiny_run.path/f, run/f)   # the rest of the run back: the chapters after it stay done
    after = subprocess.run(shared, cwd=ROOT, env=user_env(), capture_output=True, text=True, timeout=600)
    assert after.returncode == 0, after.stdout + after.stderr
    assert set(_status(after.stdout).values()) == {'skipped'}, after.stdout   # its own settings included
