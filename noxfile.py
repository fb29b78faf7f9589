"""Project sessions: `nox -s tests`, `nox -s tests_pose`, `nox -s demo`, `nox -s lint`, `nox -s bench`,
`nox -s mutants` (mutation testing; slow, not in CI).

Every install goes through constraints.txt, which pins torch/torchvision to the CPU build here:
unpinned, open_clip/timm would pull a multi-GB CUDA torch.
"""

from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

CONSTRAINTS = ("-c", "constraints.txt")
SOURCES = ("vadctl", "tests", "benchmarks", "noxfile.py")
POSE_TEST_NEEDS = ("pytest>=8", "pytest-timeout>=2.3")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite on CPU (installs the package as users get it, with test extras), one pytest
    worker per core (at most 4: each holds torch and its fixtures' models), a test file per worker
    so module fixtures (fitted models, Ray clusters) are built once."""
    session.install(*CONSTRAINTS, ".[test]")
    session.run("pytest", "-n", "auto", "--maxprocesses", "4", "--dist", "loadfile", *session.posargs)


@nox.session
def tests_pose(session: nox.Session) -> None:
    """The pose featurizer's tests with mediapipe 0.10.21, which pins numpy<2: its own environment.

    Only what those tests need is installed (no open_clip, X3D or ONNX extras): the default suite
    covers those. `.ci/run` runs this session after `tests`.
    """
    session.install(*CONSTRAINTS, ".[pose]", *POSE_TEST_NEEDS)
    session.run(
        "python", "-c", "import mediapipe, numpy; print('mediapipe', mediapipe.__version__, 'numpy', numpy.__version__)"
    )
    session.run("pytest", "tests/features/test_pose.py", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The main job end to end on the built-in synthetic data set, into stores/."""
    session.install(*CONSTRAINTS, ".")
    session.run("vadctl", "demo", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, and the house by stage: import-linter's contracts in pyproject.toml (each stage imports
    only the stages below it; executors know nothing of extraction). CI runs this session."""
    session.install("ruff>=0.6", "import-linter>=2.1")
    session.run("ruff", "check", *SOURCES)
    session.run("ruff", "format", "--check", *SOURCES)
    session.run("lint-imports", env={"PYTHONPATH": str(Path(__file__).parent)})


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks on ../shared/data/ped2 (pass a script name to run just one)."""
    session.install(*CONSTRAINTS, ".", "duckdb>=1.0")  # duckdb: benchmarks/archive.py queries the results
    scripts = session.posargs or ["benchmarks/extract.py"]
    for script in scripts:
        session.run("python", script)


@nox.session
def mutants(session: nox.Session) -> None:
    """Mutation testing with mutmut over modules whose mistakes cost users most (metrics, scoring and
    thresholds, catalog fingerprints, model files; [tool.mutmut] in pyproject.toml names them and
    the tests that pin them), then the score per module.

    Slow and not in CI. Pass mutant name patterns to run part of it, e.g.
    `nox -s mutants -- "vadctl.review.metrics.*"`. Results and the survivors judged equivalent: TESTING.md.
    """
    session.install(*CONSTRAINTS, ".[mutation]")
    session.run("mutmut", "run", *session.posargs, env={"VADCTL_HYPOTHESIS_PROFILE": "mutants"})
    session.run("python", "benchmarks/mutation_score.py")
