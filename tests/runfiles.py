"""Two runs compared file by file: bytes, or for JSON and the tables with timings, content without wall-clock fields."""
import json
import pandas as pd

from artsim.runs import WALL_CLOCK   # when, where, how fast and with how many workers a file was made: no rerun repeats these
# the artifacts that hold such fields: compared without them
TIMED = {'generated/timings.parquet', 'features/images.parquet', 'features/extraction.json', 'metrics/genre.json',
         'models/siamese.json', 'metrics/training.json', 'metrics/eval.json'}


def comparable(o, run):
    "A JSON value without its wall-clock fields, the run's own directory written as RUN."
    if isinstance(o, dict): return {k: comparable(v, run) for k, v in o.items() if k not in WALL_CLOCK}
    if isinstance(o, list): return [comparable(v, run) for v in o]
    return o.replace(str(run), 'RUN') if isinstance(o, str) else o


def files(r): return sorted(p.relative_to(r).as_posix() for p in r.rglob('*') if p.is_file() and p.suffix != '.yaml')


def differ(a, b, files) -> list:
    "The files of runs `a` and `b` that differ: in their bytes, or, for JSON and timed tables, in their content but for wall-clock fields and the run's own directory."
    out = []
    for f in files:
        x, y = a/f, b/f
        if f.endswith('.json'): same = comparable(json.loads(x.read_text()), a) == comparable(json.loads(y.read_text()), b)
        elif f in TIMED:
            u, v = (pd.read_parquet(p) for p in (x, y))
            same = u.drop(columns=[c for c in WALL_CLOCK if c in u]).equals(v.drop(columns=[c for c in WALL_CLOCK if c in v]))
        else: same = x.read_bytes() == y.read_bytes()
        if not same: out.append(f)
    return out


