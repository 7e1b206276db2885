"""What a chapter's results depend on (`artsim.reproduce.chapter_identity`): a run moved or copied keeps its finished
chapters; a setting that only changes how fast a chapter runs redoes nothing; a result-bearing one redoes its chapter and
the chapters that read what it wrote differently, each saying why; a moved source folder redoes at most chapter 00. The
declarations behind it are checked against the chapters themselves: a chapter run with other values of its
`EXECUTION_ONLY` parameters, or with only the artifacts of the stages it declares it `READS`, writes the same content."""
import json, os, shutil, subprocess

from artsim.reproduce import chapters
from artsim.stages import execution_only
from conftest import ROOT, EXE, copy_run, user_env
from test_reproduce import _my_paintings

NAMES = {s: c for c, s, _ in chapters(ROOT/'nbs')}


def _run(run, *args, timeout=900):
    r = subprocess.run([str(EXE), '--preset', 'tiny', '--run-dir', str(run), '--no-progress', *map(str, args)], cwd=ROOT,
                       env=user_env(), capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    lines = [l.split(None, 4) for l in r.stdout.splitlines()[1:-1] if not l.startswith('    ')]
    # chapter -> (status, why): the reason a chapter that ran gives, in brackets at the end of its line
    return {w[0]: (w[1], w[4][1:-1] if w[1] == 'ran' else '') for w in lines}


def _plan(run, *param) -> dict:
    "What `artsim_reproduce --plan` says of each chapter of the tiny preset in `run`: chapter -> (status, reasons)."
    import io
    from artsim.reproduce import print_plan
    return print_plan('tiny', str(run), param=list(param), out=io.StringIO())['status']


def test_a_run_copied_without_its_times_skips_every_chapter_and_execution_settings_redo_nothing(tiny_run, tmp_path):
    "Copied with new modification times (`cp -r`): every file is read again and found the same; worker counts are not results."
    moved = tmp_path/'elsewhere'/'run'
    shutil.copytree(tiny_run.path, moved, copy_function=shutil.copyfile)
    said = _run(moved, '-p', 'n_jobs=1', '-p', 'chunk_size=5', '-p', 'num_workers=1')
    assert said == {c: ('skipped', '') for c in NAMES.values()}, said
    assert execution_only('descriptors') == ('n_jobs', 'chunk_size') and execution_only('finetune') == ('num_workers',)


def test_a_result_bearing_change_redoes_its_chapter_and_those_that_read_what_changed(tiny_run, tmp_path):
    run = copy_run(tiny_run.path, tmp_path/'run')
    plan = _plan(run, 'n_jobs=2', 'size=48')   # first what --plan foresees: 02 runs, what reads it may
    assert plan[NAMES['descriptors']] == ('runs', ['parameters: size']) and plan[NAMES['finetune']] == ('done', []), plan
    assert plan[NAMES['similarity']] == ('runs', ['parameters of descriptors: size']), plan   # its identity holds 02's
    assert plan[NAMES['training']] == ('may run', [f"if {NAMES['siamese']} writes other results"]), plan   # reads 05 alone
    said = _run(run, '-p', 'n_jobs=2', '-p', 'size=48')
    ran = {c for c, (s, _) in said.items() if s == 'ran'}
    assert ran == {c for c, (s, _) in plan.items() if s != 'done'}, (plan, said)   # each one that may run, did
    # 02 reads the images; 03 its features; 04 the paintings alone; 05 02's and 03's values; 06 05's data; 07 all
    assert ran == {NAMES[s] for s in ('descriptors', 'similarity', 'siamese', 'training', 'evaluation')}, said
    assert said[NAMES['descriptors']][1] == 'parameters: size', said
    assert said[NAMES['similarity']][1].startswith('input: features/'), said
    assert said[NAMES['siamese']][1].startswith('input: features/'), said   # 05 checks the teacher against the features
    assert said[NAMES['training']][1] == 'input: siamese/data.safetensors', said
    done = json.loads((run/'.done'/f"{NAMES['descriptors']}.json").read_text())
    assert done['because'] == ['parameters: size'] and done['identity']['params']['size'] == 48



def test_a_changed_module_redoes_the_chapters_that_run_on_it(tiny_run, tmp_path):
    "A run whose records say artsim.network was another file (as after an upgrade of artsim): 06 and 07 say so and run."
    run = copy_run(tiny_run.path, tmp_path/'run')
    for chapter in NAMES.values():
        f = run/'.done'/f'{chapter}.json'
        done = json.loads(f.read_text())
        if 'artsim.network' in done['identity']['library']: done['identity']['library']['artsim.network'] = 'another'
        f.write_text(json.dumps(done))
    plan = _plan(run)
    assert plan == {c: ('runs', ['code: artsim.network']) if c in (NAMES['training'], NAMES['evaluation']) else ('done', [])
                    for c in NAMES.values()}, plan
    said = _run(run)
    assert {c for c, (s, _) in said.items() if s == 'ran'} == {NAMES['training'], NAMES['evaluation']}, said
    assert said[NAMES['training']][1] == said[NAMES['evaluation']][1] == 'code: artsim.network', said


def test_01s_input_is_its_prompts_a_bank_moved_is_the_same_an_edited_prompt_is_not(tiny_run, tmp_path):
    "The shipped bank copied elsewhere and named by prompt_bank: nothing to redo; a prompt's text edited there: 01 says so."
    import yaml
    run = copy_run(tiny_run.path, tmp_path/'run')
    rows, bank = yaml.safe_load((ROOT/'artsim'/'prompts.yaml').read_text()), tmp_path/'bank.yaml'
    bank.write_text(yaml.safe_dump(rows, sort_keys=False))
    said = _run(run, '-p', f'prompt_bank={bank}')
    assert said == {c: ('skipped', '') for c in NAMES.values()}, said
    next(r for r in rows if r['id'] == 'mythical')['text'] += ', with dragons'   # a prompt of the tiny preset
    bank.write_text(yaml.safe_dump(rows, sort_keys=False))
    said = _run(run, '-p', f'prompt_bank={bank}', '--only', '01')
    assert said == {NAMES['generation']: ('ran', 'input: the prompts')}, said

def test_a_moved_source_folder_redoes_at_most_chapter_00(tmp_path):
    "`mv` keeps the files' times: nothing to redo. A copy with new times: 00 reads it again, writes the same, 01 stays done."
    src, moved, run = tmp_path/'a'/'my_paintings', tmp_path/'b'/'my_paintings', tmp_path/'run'
    _my_paintings(src)
    first = _run(run, '--only', '00,01', '-p', 'source=folder', '-p', f'source_path={src}')
    assert [s for s, _ in first.values()] == ['ran', 'ran'], first
    moved.parent.mkdir(); os.rename(src, moved)
    said = _run(run, '--only', '00,01', '-p', 'source=folder', '-p', f'source_path={moved}')
    assert [s for s, _ in said.values()] == ['skipped', 'skipped'], said
    copied = tmp_path/'copied'
    shutil.copytree(moved, copied, copy_function=shutil.copyfile)   # new modification times
    said = _run(run, '--only', '00,01', '-p', 'source=folder', '-p', f'source_path={copied}')
    assert list(said.values()) == [('ran', 'input: the source data'), ('skipped', '')], said
