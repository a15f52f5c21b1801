"""The machine facts every run and benchmark records (``provenance.hardware_info``)."""

from cifarkit import backend, provenance


def test_speed_flags_names_the_flags_that_decide_cpu_speed_in_a_fixed_order():
    # an AVX2-only AMD EPYC (the float32 machine of #15) and a Xeon with AMX, as /proc/cpuinfo lists them
    assert provenance.speed_flags({"sse4_2", "fma", "avx2", "bmi2"}) == "avx2 fma"
    xeon = {"amx_bf16", "avx512_bf16", "avx512f", "avx2", "fma", "amx_tile"}
    assert provenance.speed_flags(xeon) == "avx2 fma avx512f avx512_bf16 amx_bf16"
    assert provenance.speed_flags({"sse2"}) == "none of avx2, fma, avx512f, avx512_bf16, amx_bf16"


def test_hardware_info_records_this_cpus_speed_flags(tmp_path):
    info = provenance.hardware_info()
    flags = backend.cpu_flags()
    if flags:  # Linux on x86 (CI): the line the reports' provenance table prints
        assert info["cpu_flags"] == provenance.speed_flags(flags)
        assert ("avx2" in info["cpu_flags"].split()) == ("avx2" in flags)
    else:
        assert "cpu_flags" not in info
    # cpu_flags reads the flags line of a cpuinfo file; none without one
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma\n")
    assert provenance.speed_flags(backend.cpu_flags(str(fake))) == "avx2 fma"
    assert backend.cpu_flags(str(tmp_path / "absent")) == set()


def test_the_study_books_machine_line_names_the_flags():
    from cifarkit.report import book

    hw = {"cpu": "AMD EPYC", "cpu_count": 2, "memory_gib": 23.5, "cpu_flags": "avx2 fma"}
    assert book._machine({"hardware": hw}) == "AMD EPYC, 2 logical cores (avx2 fma), 23.5 GiB; GPU: none"
    del hw["cpu_flags"]  # a manifest from before the flags were recorded, or from a system without them
    assert book._machine({"hardware": hw}) == "AMD EPYC, 2 logical cores, 23.5 GiB; GPU: none"


def test_a_benchmarks_command_line_is_one_a_shell_runs_again_with_passwords_masked(tmp_path, monkeypatch):
    script = provenance.PROJECT_ROOT / "benchmarks" / "bench_estimates.py"
    argv = ["-p", "STORAGE", "postgresql://u:SECRETPW9@127.0.0.1:1/db", "--out", "/tmp/a b", "-p", "SEED", "1"]
    line = provenance.command_line(script, argv)
    assert line == (
        "python benchmarks/bench_estimates.py -p STORAGE 'postgresql://u:***@127.0.0.1:1/db' --out '/tmp/a b' -p SEED 1"
    )
    # the project-relative path wherever it was started from; a script outside the project by its name
    monkeypatch.chdir(tmp_path)
    assert provenance.command_line(str(script), []) == "python benchmarks/bench_estimates.py"
    assert provenance.command_line(tmp_path / "mine.py", ["--x"]) == "python mine.py --x"
    # without argv: this process's own arguments
    monkeypatch.setattr("sys.argv", [str(script), "--summary"])
    assert provenance.command_line(script) == "python benchmarks/bench_estimates.py --summary"


def test_a_runs_manifest_records_its_command_line_quoted_and_masked_like_a_benchmarks(monkeypatch):
    """The manifest's command (what the dashboard and the study book show, and what benchmark records copy) is
    one a shell takes back: a title with a space was written unquoted before, and read as two arguments."""
    from cifarkit.report import runner

    argv = ["/repo/run_all.py", "--profile", "smoke", "-p", "03.TITLE", "a b", "-p", "STORAGE"]
    monkeypatch.setattr("sys.argv", [*argv, "postgresql://u:SECRETPW9@127.0.0.1:1/db"])
    assert runner._command_line() == (
        "run_all.py --profile smoke -p 03.TITLE 'a b' -p STORAGE 'postgresql://u:***@127.0.0.1:1/db'"
    )
    monkeypatch.setattr("sys.argv", ["run_all.py"])
    assert runner._command_line() == "run_all.py"
