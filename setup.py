from configparser import ConfigParser
from pathlib import Path
import shutil
import setuptools
from setuptools.command.build_py import build_py

# All settings are in settings.ini; edit there, not here.
# (nbdev's template imported pkg_resources, which current setuptools no longer ships.)
config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

cfg_keys = 'version description keywords author author_email'.split()
expected = cfg_keys + "lib_name user branch license status min_python audience language".split()
for o in expected: assert o in cfg, "missing expected setting: {}".format(o)
setup_cfg = {o: cfg[o] for o in cfg_keys}

licenses = {
    'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License'),
    'mit': ('MIT License', 'OSI Approved :: MIT License'),
    'gpl2': ('GNU General Public License v2', 'OSI Approved :: GNU General Public License v2 (GPLv2)'),
    'gpl3': ('GNU General Public License v3', 'OSI Approved :: GNU General Public License v3 (GPLv3)'),
    'bsd3': ('BSD License', 'OSI Approved :: BSD License'),
}
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha',
            '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
py_versions = '3.10 3.11 3.12 3.13'.split()

requirements = cfg.get('requirements', '').split()
min_python = cfg['min_python']
lic = licenses.get(cfg['license'].lower(), (cfg['license'], None))
reproduce_requirements = (cfg.get('reproduce_requirements') or '').split()
dev_requirements = (cfg.get('dev_requirements') or '').split() + reproduce_requirements


class build_py_with_chapters(build_py):
    "Ship the chapters, nbs/NN_*.ipynb found by glob (new ones come along), as artsim/chapters/ for artsim_reproduce."
    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False): return  # an editable install runs the clone's nbs/ itself
        chapters = sorted(Path(cfg.get('nbs_path', 'nbs')).glob('[0-9][0-9]_*.ipynb'))
        dst = Path(self.build_lib)/cfg['lib_path']/'chapters'
        shutil.rmtree(dst, ignore_errors=True)  # a chapter removed from nbs/ must not linger in build/
        if chapters: self.mkpath(str(dst))
        for f in chapters: self.copy_file(str(f), str(dst/f.name))


setuptools.setup(
    name=cfg['lib_name'],
    license=lic[0],
    classifiers=[
        'Development Status :: ' + statuses[int(cfg['status'])],
        'Intended Audience :: ' + cfg['audience'].title(),
        'Natural Language :: ' + cfg['language'].title(),
    ] + ['Programming Language :: Python :: ' + o for o in py_versions[py_versions.index(min_python):]]
      + (['License :: ' + lic[1]] if lic[1] else []),
    url=cfg['git_url'],
    packages=setuptools.find_packages(include=['artsim', 'artsim.*']),
    include_package_data=True,
    package_data={'artsim': ['*.yaml', '*.csv', '*.json']},
    install_requires=requirements,
    extras_require={'dev': dev_requirements, 'reproduce': reproduce_requirements},
    cmdclass={'build_py': build_py_with_chapters},
    python_requires='>=' + cfg['min_python'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={
        'console_scripts': cfg.get('console_scripts', '').split(),
        'nbdev': [f'{cfg.get("lib_path")}={cfg.get("lib_path")}._modidx:d'],
    },
    **setup_cfg)
