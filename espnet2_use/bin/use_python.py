"""``espnet2-use-python``: the Python interpreter, with USE registered in ESPnet.

Give it to a stock ESPnet recipe as its interpreter and the recipe's own entry points
know ``separator: use`` (``enh`` task) and ``extractor: use`` (``tse`` task)::

    ./enh.sh --python espnet2-use-python ...        # egs2/*/enh1
    ./enh_tse.sh --python espnet2-use-python ...    # egs2/*/tse1

It takes what ``python`` takes and behaves the same way::

    espnet2-use-python -m espnet2.bin.enh_train --config conf/use.yaml ...
    espnet2-use-python -m espnet2.bin.launch --cmd "run.pl" ... -- \\
        espnet2-use-python -m espnet2.bin.enh_train ...
    espnet2-use-python -c "import espnet2.tasks.enh as t; print('use' in t.separator_choices.classes)"
    espnet2-use-python script.py ARGS        # or "-" / nothing: read stdin, or interactive

Before running the module, command or script it imports ``espnet2_use``, which
imports nothing of ESPnet: it installs an import hook that adds USE's components to
ESPnet's registries when ESPnet's task modules load (``espnet2_use.espnet_hooks``).
Interpreter options (``-u``, ``-W ...``, ``-X ...``, ``-O`` ...) restart the real
interpreter with them: ``python OPTIONS -m espnet2_use.bin.use_python ...``.
Child processes that ``multiprocessing`` starts by spawning (torch's multi-GPU
launch) run through this interpreter as well, so they know USE too. Plain ``python``
is not affected (no ``.pth`` hook, no ``sitecustomize``).
"""
import os
import sys
from typing import List, Optional, Sequence, Tuple

#: The environment variable that carries this interpreter's path to restarted
#: interpreters and to ``multiprocessing``'s spawned children.
EXECUTABLE_ENV = "ESPNET2_USE_PYTHON"
PROG = "espnet2-use-python"

# Modules whose stock ``main`` must run from the imported module, so that USE's
# import hook sees the module load (runpy would execute a fresh copy as __main__).
IMPORT_THEN_MAIN = ("espnet2.bin.enh_inference",)

# Options of ``python`` that take a value (as a separate argument or attached).
_VALUE_OPTIONS = ("W", "X")
_FLAG_OPTIONS = set("bBdEhiIOPqsSuvVx")

USAGE = f"""usage: {PROG} [option] ... [-c cmd | -m mod | file | -] [arg] ...

The Python interpreter with USE's components registered in ESPnet's enh and tse tasks.
Put it where a recipe names its interpreter: enh.sh / enh_tse.sh --python {PROG}.

  -m mod : run library module as a script (e.g. espnet2.bin.enh_train)
  -c cmd : program passed in as string
  file   : program read from script file
  -      : program read from stdin (default; interactive mode if a tty)
  other options (-u, -B, -O, -W arg, -X opt, ...) are python's: see python -h
"""


def _split(argv: Sequence[str]) -> Tuple[List[str], Optional[str], Optional[str], List[str]]:
    """Split a ``python``-style command line.

    Args:
        argv: the arguments after the program name.

    Returns:
        interpreter options, the mode (``-c``, ``-m``, ``file``, ``-`` or None for
        none given), its value (code, module or path), and the remaining arguments.
    """
    options: List[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "-" or not arg.startswith("-"):
            if arg == "-":
                return options, "-", None, list(argv[i + 1:])
            return options, "file", arg, list(argv[i + 1:])
        if arg == "--":
            if i + 1 < len(argv):
                return options, "file", argv[i + 1], list(argv[i + 2:])
            return options, None, None, []
        if arg.startswith("--"):
            if arg in ("--help",):
                options.append("-h")
            elif arg == "--version":
                options.append("-V")
            elif arg == "--check-hash-based-pycs" and i + 1 < len(argv):
                options += [arg, argv[i + 1]]
                i += 1
            else:
                options.append(arg)
            i += 1
            continue
        # A cluster of one-letter options: -uB, -Wignore, -c<code>, -m<module> ...
        j = 1
        while j < len(arg):
            letter = arg[j]
            if letter in ("c", "m"):
                value = arg[j + 1:]
                rest_index = i + 1
                if not value:
                    if i + 1 >= len(argv):
                        raise SystemExit(f"Argument expected for the -{letter} option")
                    value = argv[i + 1]
                    rest_index = i + 2
                return options, f"-{letter}", value, list(argv[rest_index:])
            if letter in _VALUE_OPTIONS:
                value = arg[j + 1:]
                if not value:
                    if i + 1 >= len(argv):
                        raise SystemExit(f"Argument expected for the -{letter} option")
                    i += 1
                    value = argv[i]
                options += [f"-{letter}", value]
                break
            if letter not in _FLAG_OPTIONS:
                print(f"Unknown option: -{letter}\n{USAGE}", file=sys.stderr, end="")
                raise SystemExit(2)
            options.append(f"-{letter}")
            j += 1
        i += 1
    return options, None, None, []


def _executable() -> Optional[str]:
    """Path of this interpreter's console script, when it was started through it."""
    path = os.environ.get(EXECUTABLE_ENV)
    if path and os.access(path, os.X_OK):
        return path
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0).startswith(PROG) and os.access(argv0, os.X_OK):
        return os.path.abspath(argv0)
    return None


def _restart(options: List[str], argv: Sequence[str]) -> None:
    """Run the real interpreter with ``options``, this module, and ``argv``."""
    exe = _executable()
    if exe:
        os.environ[EXECUTABLE_ENV] = exe
    command = [sys.executable, *options, "-m", "espnet2_use.bin.use_python", *argv]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)


def _prepare() -> None:
    """Install USE's import hook; route ``multiprocessing`` spawns through us."""
    import espnet2_use  # noqa: F401  (installs the hook; imports nothing of ESPnet)

    exe = _executable()
    if exe:
        os.environ[EXECUTABLE_ENV] = exe
        import multiprocessing

        multiprocessing.set_executable(exe)


def _set_path0(value: str) -> None:
    # sys.path[0] is the script's folder ('' for -c, the cwd for -m), unless -P.
    if sys.flags.safe_path or not sys.path:
        return
    sys.path[0] = value


def _main_namespace() -> dict:
    """A fresh ``__main__`` module (as python's own for -c and stdin); its dict."""
    import types

    module = types.ModuleType("__main__")
    module.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = module
    return module.__dict__


def run_module(module: str, args: Sequence[str]) -> None:
    """Run ``module`` as ``python -m module args`` does, with USE registered.

    Args:
        module: dotted module name.
        args: its command-line arguments (``sys.argv[1:]``).
    """
    import runpy

    _prepare()
    if module in IMPORT_THEN_MAIN:
        import importlib

        mod = importlib.import_module(module)
        sys.argv = [getattr(mod, "__file__", module), *args]
        mod.main()
        return
    sys.argv = [module, *args]  # runpy puts the module's file in sys.argv[0]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Emulate ``python [option] ... [-c cmd | -m mod | file | -] [arg] ...``.

    Args:
        argv: the arguments after the program name (default: ``sys.argv[1:]``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    options, mode, value, rest = _split(argv)
    if "-h" in options:
        print(USAGE, end="")
        return
    if options:
        # -V, -u, -O, -W ... belong to the interpreter itself: restart it with them.
        tail = [] if mode is None else ([mode] if mode == "-" else
                                          ([value] if mode == "file" else [mode, value]))
        _restart(options, tail + rest)
        return
    if mode == "-m":
        _set_path0(os.getcwd())
        run_module(value, rest)
        return
    _prepare()
    if mode == "-c":
        _set_path0("")
        sys.argv = ["-c", *rest]
        exec(compile(value, "<string>", "exec"), _main_namespace())
        return
    if mode == "file":
        import runpy

        _set_path0(os.path.dirname(os.path.abspath(value)))
        sys.argv = [value, *rest]
        if not os.path.exists(value):
            raise SystemExit(f"{PROG}: can't open file {value!r}: [Errno 2] No such file or directory")
        runpy.run_path(value, run_name="__main__")
        return
    _set_path0("")
    sys.argv = ["-" if mode == "-" else "", *rest]
    if mode is None and sys.stdin.isatty():
        import code

        code.interact(banner=f"Python {sys.version} ({PROG}: USE registered in ESPnet)",
                      local={"__name__": "__main__"})
        return
    exec(compile(sys.stdin.read(), "<stdin>", "exec"), _main_namespace())


def cli() -> None:
    """Console-script entry point of ``espnet2-use-python``."""
    main()


if __name__ == "__main__":
    main()
