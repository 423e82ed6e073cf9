#!/usr/bin/python3
"""Training-step speed of catlip against PyTorch (float32, CPU), same model, same machine, same run,
with PyTorch timed in each of several configurations and compared at its fastest.

For each thread count and each of --runs runs, it starts, one after the other (alternating, so
that every side sees the same machine state):
  (a) catlip bench step --model M --image-size S --patch-size P --batch B --classes V
                        --threads T --steps N --warmup 1
      whose last stdout line is
      result: images_per_second=F gflops=F sgemm_gflops=F sgemm_share=F peak_rss_mb=F ...
  (b) for each PyTorch configuration, a fresh Python process running the same training step in
      PyTorch: forward, CatLIP BCE loss, backward, grad-norm clip, AdamW step (foreach), EMA
      update; torch.set_num_threads(T), OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = T.
Then, per thread count, --runs rounds of: catlip's fp32 step again, catlip's bf16 step (bench
step --precision bf16: train.precision bf16) and PyTorch's bf16 autocast step (autocast("cpu",
bfloat16) around forward + loss) in the environment of the fastest float32 configuration; they
get their own table — catlip bf16 against catlip fp32 and against PyTorch bf16, and the share
of the cores' measured VDPBF16PS peak that catlip's bf16 step reaches — and are not part of the
float32 ratio (--no-bf16 skips them). Besides the ratios of the medians, that table gives the
median of the rounds' own ratios (bf16 over the fp32 run just before it, over the PyTorch bf16
run just after it): this machine's speed changes for minutes at a time, and the rounds' runs
are seconds apart where the medians' are minutes apart.

Statistic, the same on both sides: one warm-up step (not timed), then N steps each timed on its
own; a run's rate is batch / the median step time (catlip bench step reports exactly that, and
its step_ms_median). Per thread count the table gives the median over runs.

PyTorch configurations: OPENBLAS_CORETYPE / ATEN_CPU_CAPABILITY / OMP_WAIT_POLICY, named e.g.
SkylakeX/avx512/PASSIVE. Debian's torch takes its float32 matmuls from the system OpenBLAS
(libblas.so.3, the same library catlip can call) and its elementwise kernels from ATen's
AVX2 build unless told otherwise, so:
  OPENBLAS_CORETYPE   given    = as in this environment (e.g. Haswell: OpenBLAS's AVX2 kernel)
                      SkylakeX = OpenBLAS's AVX-512 kernel (only on CPUs with AVX-512);
                                 OPENBLAS_L2_SIZE is unset with it (OpenBLAS's own cache sizes)
                      native   = unset: OpenBLAS detects the CPU and picks its own kernel
                                 (OPENBLAS_L2_SIZE unset too)
  ATEN_CPU_CAPABILITY default  = unset (ATen picks; this torch picks AVX2 even on AVX-512 CPUs)
                      avx512   = ATen's AVX-512 kernels (only on CPUs with AVX-512)
  OMP_WAIT_POLICY     default  = unset (libgomp spins a while before sleeping)
                      PASSIVE  = idle OpenMP threads sleep at once, leaving the cores to
                                 OpenBLAS's own pthreads while they run a matmul
--torch-configs picks them: given (the environment as given, under both wait policies:
given/default/{PASSIVE,default}), best (default: given/default/PASSIVE,
SkylakeX/avx512/{PASSIVE,default} and native/avx512/PASSIVE; given's two and native/default/PASSIVE
on a CPU without AVX-512), all (every combination
this CPU supports), or a comma-separated list of names. At 1 thread there is no OpenMP or
OpenBLAS worker thread for a wait policy to act on, so X/Y/default is not run there when
X/Y/PASSIVE is (it would be the same run). Each PyTorch child verifies
what actually ran and prints it: OpenBLAS's core (threadpoolctl's threadpool_info(), or
openblas_get_corename through ctypes) and thread count, ATen's CPU capability
(torch.backends.cpu.get_cpu_capability() or torch.__config__.show()), libgomp's wait policy and
spin count (OMP_DISPLAY_ENV=VERBOSE) and the CPUs its threads may run on; a configuration that
did not take effect is marked NOT IN EFFECT. None of this touches catlip's runs, tests or CI.

Ratio = catlip img/s / the FASTEST PyTorch configuration's img/s at the same thread count (every
configuration's own rate and ratio are printed too). Peak RSS is each child's own ru_maxrss
(os.wait4). Share of peak: catlip's step GFLOP/s over the sgemm GFLOP/s catlip measures on this
machine with the same threads (sgemm_share), and the fastest PyTorch configuration's GFLOP/s (same
FLOP count) over that same sgemm rate.

Thread pinning, the same on both sides: each child process (catlip and PyTorch) is given the
same first T usable CPUs as its affinity mask (sched_setaffinity before exec), so at T threads
both sides run on the same T cores and neither borrows an idle one. Within that set catlip binds
each of its pool threads to its own core with hwloc (what it does in training too) and PyTorch's
threads run as it ships, unbound within the set: OMP_PROC_BIND=close/OMP_PLACES=cores binds the main thread to one
core before OpenBLAS sizes its pool from that thread's affinity, so OpenBLAS drops to 1 thread
and torch's matmuls lose the other cores (measured: threadpool_info() says openblas 1 thread).

  bench/step_vs_pytorch.py --catlip build/catlip            # vit_tiny/16, 224, batch 32, 24320 classes
  bench/step_vs_pytorch.py --torch-configs all --runs 1     # every PyTorch configuration, once
  bench/step_vs_pytorch.py --no-catlip --threads 1 --runs 1  # the PyTorch half alone
"""
import argparse
import ctypes
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "reference"))

RESULT_KEYS = ("images_per_second", "gflops", "sgemm_gflops", "sgemm_share", "peak_rss_mb")

# ATen's AVX-512 build and OpenBLAS's SkylakeX kernel both need these.
AVX512_FLAGS = ("avx512f", "avx512bw", "avx512vl", "avx512dq")
CORETYPES = ("given", "SkylakeX", "native")
ATENS = ("default", "avx512")
WAITS = ("default", "PASSIVE")
# given: the environment as given, under both wait policies. best: the environment as given
# (passive, the old peer), and both AVX-512 switches on together (the likely fastest on an
# AVX-512 CPU) under both policies; given/default/default is left out of it because spinning
# can make 2-thread steps several times slower on the 2-core machine (7x measured), a minute or
# more per run, and SkylakeX/avx512/default already shows what spinning does. all: every
# combination, the mixed ones too.
PRESET_GIVEN = ("given/default/PASSIVE", "given/default/default")
PRESET_BEST = ("given/default/PASSIVE", "SkylakeX/avx512/PASSIVE", "SkylakeX/avx512/default",
               "native/avx512/PASSIVE")

PINNING = ("thread pinning: both children get the same first T usable CPUs as their affinity mask; "
           "within it catlip binds each pool thread to its own core\n  (hwloc), as in training; "
           "PyTorch as shipped, threads "
           "unbound (OMP_PROC_BIND/OMP_PLACES/GOMP_CPU_AFFINITY removed): OMP_PROC_BIND=close would "
           "bind the main thread first and leave OpenBLAS 1 thread")


def first_cpus(t):
    """The first t CPUs this process may use: the affinity both sides get at t threads."""
    return sorted(os.sched_getaffinity(0))[:t]


def train_flops_per_image(dim, depth, heads, image_size, patch_size, classes):
    """3 x the forward matmul FLOPs of one image (the usual forward + 2 x backward count):
    patch embedding, per block qkv / scores / attention x values / proj / fc1 / fc2, and the
    head on the CLS token. Softmax, LayerNorm, GELU and the optimiser are not counted."""
    n = (image_size // patch_size) ** 2
    t = n + 1
    c, hidden = dim, 4 * dim
    fwd = 2 * n * (3 * patch_size * patch_size) * c
    per_block = (2 * t * c * 3 * c      # qkv
                 + 2 * t * t * c        # q k^T over all heads
                 + 2 * t * t * c        # probs v
                 + 2 * t * c * c        # proj
                 + 2 * t * c * hidden   # fc1
                 + 2 * t * hidden * c)  # fc2
    fwd += depth * per_block + 2 * c * classes
    return 3 * fwd


def parse_result_line(text):
    """The values of catlip's last 'result:' line, or raise ValueError naming what is wrong."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    if not lines or not lines[-1].startswith("result:"):
        last = lines[-1] if lines else "(no output)"
        raise ValueError(f"last stdout line is not 'result: ...': {last!r}")
    values = {}
    for field in lines[-1][len("result:"):].split():
        key, sep, value = field.partition("=")
        if not sep:
            raise ValueError(f"'{field}' in the result line is not key=value")
        try:
            values[key] = float(value)
        except ValueError:
            if key not in ("precision",):  # the words bench step prints
                raise ValueError(f"'{key}={value}' in the result line is not a number")
            values[key] = value
    missing = [k for k in RESULT_KEYS if k not in values]
    if missing:
        raise ValueError(f"result line lacks {', '.join(missing)}")
    for line in lines:  # "threads    2 threads bound to PUs 0,1": how catlip placed its pool
        if line.startswith("threads "):
            values["threads_line"] = line[len("threads"):].strip()
    return values


def run_child(args, env, cpus=None):
    """Runs a child with stdout/stderr to temp files, its affinity restricted to cpus (a list) when
    given; returns (rc, stdout, stderr, peak RSS MB, s)."""
    def restrict():
        if cpus:
            os.sched_setaffinity(0, cpus)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.time()
        p = subprocess.Popen(args, stdout=out, stderr=err, env=env, preexec_fn=restrict)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        secs = time.time() - t0
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read(), err.read(), usage.ru_maxrss / 1024.0, secs


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# ---------------------------------------------------------------- in the PyTorch child

def openblas_info():
    """(core name, threads, how it was found) of the OpenBLAS loaded in this process."""
    try:
        import threadpoolctl
        for i in threadpoolctl.threadpool_info():
            if i.get("internal_api") == "openblas":
                return i.get("architecture"), i.get("num_threads"), "threadpoolctl"
    except ImportError:
        pass
    with open("/proc/self/maps") as f:
        paths = sorted({l.split()[-1] for l in f if "blas" in l and l.split()[-1].startswith("/")})
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            name = lib.openblas_get_corename
        except (OSError, AttributeError):
            continue
        name.restype = ctypes.c_char_p
        return name().decode(), lib.openblas_get_num_threads(), "openblas_get_corename"
    return None, None, "no OpenBLAS loaded"


def aten_capability(torch):
    try:
        import torch.backends.cpu as tbc
        return tbc.get_cpu_capability()
    except (ImportError, AttributeError):
        pass
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage:" in line:
            return line.split(":", 1)[1].strip()
    return None


def thread_cpus():
    """'N threads on cpus X' (or 'cpus X / Y' when threads differ) for every thread of this process."""
    masks = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("Cpus_allowed_list:"):
                        masks.append(line.split(":", 1)[1].strip())
        except OSError:
            pass
    return f"{len(masks)} thread{'s' if len(masks) != 1 else ''} on cpus {' / '.join(sorted(set(masks)))}"


def onednn_matmul_impl(torch, probe):
    """The oneDNN implementation a bf16 linear under autocast runs (from oneDNN's verbose output,
    captured at the file-descriptor level), or a reason it is unknown."""
    verbose = getattr(torch.backends.mkldnn, "verbose", None)
    if verbose is None:
        return "unknown (no torch.backends.mkldnn.verbose)"
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile("w+") as tmp:
        os.dup2(tmp.fileno(), 1)
        try:
            with verbose(1):
                probe()
        finally:
            ctypes.CDLL(None).fflush(None)
            os.dup2(saved, 1)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read()
    for line in text.splitlines():
        f = line.split(",")
        if len(f) > 4 and f[1] == "exec" and f[3] in ("matmul", "inner_product"):
            return f"{f[3]} {f[4]}"
    return "no oneDNN matmul seen (bf16 linear did not go to oneDNN)"


def torch_worker(a):
    """One PyTorch run, in its own process; prints a 'verify:' JSON line and a result line."""
    import resource

    import torch
    import vit_ref

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = vit_ref.model_config(a.model, a.image_size, a.patch_size, a.classes)
    model = vit_ref.build_model(cfg, torch.float32)
    images = torch.randn(a.batch, 3, a.image_size, a.image_size)
    targets = (torch.rand(a.batch, a.classes) < 10.0 / a.classes).float()
    optim = {"lr": 1e-3, "min_lr": 1e-5, "warmup_steps": 0, "warmup_init_lr": 1e-6, "weight_decay": 0.2,
             "betas": [0.9, 0.999], "eps": 1e-8, "grad_clip": 1.0, "ema": 0.0005}
    params = list(model.parameters())
    # foreach=True: PyTorch's multi-tensor AdamW, its fastest CPU path in this version.
    opt = torch.optim.AdamW(vit_ref.param_groups(model, optim["weight_decay"]), lr=optim["lr"],
                            betas=tuple(optim["betas"]), eps=optim["eps"], foreach=True)
    ema = [p.detach().clone() for p in params]
    total = a.warmup + a.steps
    verify = {}
    if a.bf16:
        def probe():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                model.blocks[0].mlp.fc1(torch.randn(64, cfg["dim"]))
        verify["onednn"] = onednn_matmul_impl(torch, probe)

    def forward_loss():
        return vit_ref.catlip_loss(model(images), targets)

    def step(t):
        for g in opt.param_groups:
            g["lr"] = vit_ref.lr_at(t, optim, total)
        opt.zero_grad(set_to_none=True)
        if a.bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = forward_loss()
        else:
            loss = forward_loss()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, optim["grad_clip"])
        opt.step()
        with torch.no_grad():
            torch._foreach_mul_(ema, 1.0 - optim["ema"])
            torch._foreach_add_(ema, params, alpha=optim["ema"])
        return float(loss)

    for t in range(a.warmup):
        step(t)
    times = []
    for t in range(a.warmup, total):
        t0 = time.perf_counter()
        step(t)  # float(loss) inside: the step has finished when the clock stops
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    ips = a.batch / med
    flops = train_flops_per_image(cfg["dim"], cfg["depth"], cfg["heads"], a.image_size, a.patch_size, a.classes)
    core, blas_threads, how = openblas_info()
    verify.update({"openblas_core": core, "openblas_threads": blas_threads, "openblas_found_by": how,
                   "aten": aten_capability(torch), "threads": thread_cpus(),
                   "step_ms": [round(s * 1e3, 3) for s in times]})
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("verify: " + json.dumps(verify))
    print(f"result: images_per_second={ips:.4f} step_ms_median={med * 1e3:.3f} gflops={ips * flops / 1e9:.4f} "
          f"peak_rss_mb={rss:.1f} torch_threads={torch.get_num_threads()}")
    return 0


def describe_worker(a):
    """Prints, as one JSON line, what the parent needs from torch, so that the parent never
    imports torch: a child forked from a parent holding torch would start with its RSS."""
    import torch
    import vit_ref

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    lines = [f"machine: {cpu}, {os.cpu_count()} logical CPUs, {len(os.sched_getaffinity(0))} usable",
             f"torch {torch.__version__}"]
    info = [l.strip() for l in torch.__config__.parallel_info().splitlines() if l.strip()]
    lines += ["  " + l for l in info[:6]]
    for field in torch.__config__.show().replace(",", "\n").splitlines():
        if "BLAS_INFO" in field:
            lines.append("  " + field.strip() + " (libblas.so.3: the same OpenBLAS as catlip's where "
                         "Debian's alternative points there)")
    core, _, how = openblas_info()
    lines.append(f"  OpenBLAS core in this environment: {core} (found by {how}); "
                 f"ATen CPU capability: {aten_capability(torch)}")
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "ATEN_CPU_CAPABILITY", "OMP_WAIT_POLICY",
              "OMP_PROC_BIND", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        if k in os.environ:
            lines.append(f"  {k}={os.environ[k]} (in the environment)")
    if "OPENBLAS_L2_SIZE" in os.environ:
        # Whether the loaded OpenBLAS reads it at all: the name must be in the library.
        with open("/proc/self/maps") as f:
            libs = sorted({l.split()[-1] for l in f if "libopenblas" in l and l.split()[-1].startswith("/")})
        reads = []
        for path in libs:
            try:
                with open(path, "rb") as lib:
                    reads.append(b"OPENBLAS_L2_SIZE" in lib.read())
            except OSError:
                pass
        if reads:
            lines.append("  OPENBLAS_L2_SIZE: the loaded OpenBLAS " + ("reads it" if any(reads) else
                         "does not read it (no such name in the library)") +
                         "; SkylakeX configurations unset it")
    print(json.dumps({"lines": lines, "presets": vit_ref.PRESETS}))
    return 0


# ---------------------------------------------------------------- in the parent

def median(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt(x, spec):
    """x formatted to spec ('>7.2f'), or '-' at the same width when it is missing (no catlip run)."""
    width = spec[1:].split(".")[0]
    return f"{'-':>{width}}" if x is None or x != x else format(x, spec)


def no_nan(x):
    """x with every NaN (a number with no runs behind it) as None, for strict JSON."""
    if isinstance(x, dict):
        return {k: no_nan(v) for k, v in x.items()}
    if isinstance(x, list):
        return [no_nan(v) for v in x]
    return None if isinstance(x, float) and x != x else x


def torch_configs(spec, has_avx512):
    """The configuration names --torch-configs asks for, or raise ValueError."""
    every = [f"{c}/{t}/{w}" for c in CORETYPES for t in ATENS for w in WAITS
             if has_avx512 or (c in ("given", "native") and t == "default")]
    if spec == "all":
        return every
    if spec == "given":
        return list(PRESET_GIVEN)
    if spec == "best":
        return ([n for n in PRESET_BEST if n in every] if has_avx512
                else list(PRESET_GIVEN) + ["native/default/PASSIVE"])
    names = [n.strip() for n in spec.split(",") if n.strip()]
    for n in names:
        parts = n.split("/")
        if len(parts) != 3 or parts[0] not in CORETYPES or parts[1] not in ATENS or parts[2] not in WAITS:
            raise ValueError(f"'{n}' is not a configuration (CORETYPE/ATEN/WAIT, each of "
                             f"{'|'.join(CORETYPES)} / {'|'.join(ATENS)} / {'|'.join(WAITS)})")
    if not names:
        raise ValueError("no configuration named")
    return list(dict.fromkeys(names))


def configs_at(configs, threads):
    """The configurations to run at this thread count: at 1 thread X/Y/default only when X/Y/PASSIVE
    is not also asked for (no worker threads: the wait policy changes nothing)."""
    if threads > 1:
        return list(configs)
    return [n for n in configs if not (n.endswith("/default") and n[:-len("default")] + "PASSIVE" in configs)]


def torch_env(name, threads):
    """The environment of a PyTorch child in configuration `name`, and what it should verify as."""
    core, aten, wait = name.split("/")
    # OpenMP and OpenBLAS (pthreads; torch.set_num_threads does not govern it) both get T
    # threads, as a PyTorch user would give them, or they fight over the cores.
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               OMP_DISPLAY_ENV="VERBOSE")  # libgomp prints its settings: the wait policy's proof
    for k in ("OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY"):
        env.pop(k, None)  # the pinning policy (PINNING): PyTorch's threads unbound
    want = {"openblas_threads": threads}
    if core == "SkylakeX":
        env["OPENBLAS_CORETYPE"] = "SkylakeX"
        env.pop("OPENBLAS_L2_SIZE", None)
    elif core == "native":
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    if env.get("OPENBLAS_CORETYPE"):
        want["openblas_core"] = env["OPENBLAS_CORETYPE"]
    if aten == "avx512":
        env["ATEN_CPU_CAPABILITY"] = "avx512"
        want["aten"] = "AVX512"
    else:
        env.pop("ATEN_CPU_CAPABILITY", None)
    if wait == "PASSIVE":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
        want["spin"] = "0"
    else:
        env.pop("OMP_WAIT_POLICY", None)
    return env, want


def omp_settings(stderr):
    """libgomp's OMP_WAIT_POLICY and GOMP_SPINCOUNT from its OMP_DISPLAY_ENV block."""
    got = {}
    for line in stderr.splitlines():
        key, sep, value = line.strip().partition(" = ")
        if sep and key in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
            got[key] = value.strip("'")
    return got


def torch_result(out, err, want, threads):
    """The values of a PyTorch child's output, with 'verified' (one line) and 'not_in_effect'."""
    values, verify = None, None
    for line in out.splitlines():
        if line.startswith("result:"):
            values = {}
            for field in line[len("result:"):].split():
                k, _, v = field.partition("=")
                values[k] = float(v)
        elif line.startswith("verify: "):
            verify = json.loads(line[len("verify: "):])
    if values is None or verify is None:
        raise ValueError("PyTorch worker printed no result line")
    omp = omp_settings(err)
    verify["omp_wait_policy"] = omp.get("OMP_WAIT_POLICY")
    verify["omp_spincount"] = omp.get("GOMP_SPINCOUNT")
    bad = []
    if "openblas_core" in want and (verify["openblas_core"] or "").lower() != want["openblas_core"].lower():
        bad.append(f"OpenBLAS core {verify['openblas_core']}, wanted {want['openblas_core']}")
    if verify["openblas_threads"] != want["openblas_threads"]:
        bad.append(f"OpenBLAS {verify['openblas_threads']} threads, wanted {want['openblas_threads']}")
    if "aten" in want and (verify["aten"] or "").upper() != want["aten"]:
        bad.append(f"ATen {verify['aten']}, wanted {want['aten']}")
    spin = verify["omp_spincount"]
    if spin is None:
        bad.append("libgomp printed no settings (wait policy unverified)")
    elif "spin" in want and spin != want["spin"]:
        bad.append(f"libgomp spin count {spin}, wanted {want['spin']} (PASSIVE)")
    elif "spin" not in want and spin == "0" and threads > 1:
        bad.append("libgomp does not spin (OMP_WAIT_POLICY default wanted)")
    if " / " in verify["threads"]:
        bad.append("threads bound to different CPUs (unbound wanted)")
    omp_text = "passive (spin 0)" if spin == "0" else f"spins {spin}" if spin else "?"
    values["verified"] = (f"OpenBLAS {verify['openblas_core']} x{verify['openblas_threads']}, "
                          f"ATen {verify['aten']}, OpenMP {omp_text}, {verify['threads']}"
                          + (f", oneDNN {verify['onednn']}" if "onednn" in verify else ""))
    values["not_in_effect"] = "; ".join(bad)
    values["verify"] = verify
    return values


def catlip_args(a, threads, precision="fp32"):
    return [a.catlip, "bench", "step", "--model", a.model, "--image-size", str(a.image_size),
            "--patch-size", str(a.patch_size), "--batch", str(a.batch), "--classes", str(a.classes),
            "--threads", str(threads), "--steps", str(a.steps), "--warmup", "1", "--profile"] + (
            ["--precision", precision] if precision != "fp32" else [])


def run_catlip(a, t, r, precision, runs, note=""):
    """One catlip bench step child; appends its values to runs and prints its line (label
    followed by note); False if it failed."""
    label = "catlip" + (f" {precision}" if precision != "fp32" else "") + note
    rc, out, err, rss, secs = run_child(catlip_args(a, t, precision), dict(os.environ), first_cpus(t))
    try:
        if rc != 0:
            raise ValueError(f"(exit {rc}): " +
                             (err.strip().splitlines() or out.strip().splitlines() or ["no output"])[-1])
        v = parse_result_line(out)
    except ValueError as e:
        print(f"threads {t} run {r + 1} {label}: FAILED {e}")
        return False
    v["rss_mb"], v["wall_s"] = rss, secs
    runs.append(v)
    med = f" (median step {v['step_ms_median']:.0f} ms)" if "step_ms_median" in v else ""
    peak = (f", {100 * v['bf16_peak_share']:.0f}% of the VDPBF16PS peak ({v['bf16_peak_gflops']:.0f} GFLOP/s)"
            if precision == "bf16" and v.get("bf16_peak_gflops") else "")
    print(f"threads {t} run {r + 1} {label:<31}: {v['images_per_second']:8.2f} img/s{med}, "
          f"peak RSS {rss:5.0f} MB, {secs:5.1f} s wall, {v['gflops']:.1f} GFLOP/s, sgemm "
          f"{v['sgemm_gflops']:.1f} GFLOP/s (share {v['sgemm_share']:.2f}){peak}; "
          f"{v.get('threads_line', '')}", flush=True)
    return True


def torch_args(a, threads, bf16=False):
    return ([sys.executable, os.path.abspath(__file__), "--torch-worker", "--model", a.model,
             "--image-size", str(a.image_size), "--patch-size", str(a.patch_size), "--batch", str(a.batch),
             "--classes", str(a.classes), "--threads", str(threads), "--steps", str(a.steps), "--warmup", "1"]
            + (["--bf16"] if bf16 else []))


def without_omp_display(text):
    """text less libgomp's OMP_DISPLAY_ENV block."""
    keep, inside = [], False
    for line in text.splitlines():
        if line.startswith("OPENMP DISPLAY ENVIRONMENT"):
            inside = line.endswith("BEGIN")
        elif not inside:
            keep.append(line)
    return "\n".join(keep)


def run_torch(a, t, r, name, bf16, runs):
    """One PyTorch child; appends its values to runs and prints its line; False if it failed."""
    env, want = torch_env(name, t)
    label = f"torch {name}" + (" bf16" if bf16 else "")
    rc, out, err, rss, secs = run_child(torch_args(a, t, bf16), env, first_cpus(t))
    if rc != 0:
        last = (without_omp_display(err).strip().splitlines() or out.strip().splitlines() or ["no output"])[-1]
        print(f"threads {t} run {r + 1} {label}: FAILED (exit {rc}): {last}")
        return False
    try:
        v = torch_result(out, err, want, t)
    except ValueError as e:
        print(f"threads {t} run {r + 1} {label}: FAILED: {e}")
        return False
    v["rss_mb"], v["wall_s"] = rss, secs
    runs.append(v)
    flag = f"  NOT IN EFFECT: {v['not_in_effect']}" if v["not_in_effect"] else ""
    print(f"threads {t} run {r + 1} {label:<31}: {v['images_per_second']:8.2f} img/s (median step "
          f"{v['step_ms_median']:.0f} ms), peak RSS {rss:5.0f} MB, {secs:5.1f} s wall, "
          f"{v['gflops']:.1f} GFLOP/s; {v['verified']}{flag}", flush=True)
    return True


def summarise(vs, key):
    """The distinct values of key over runs, joined (they should all agree)."""
    return " | ".join(dict.fromkeys(str(v[key]) for v in vs)) if vs else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catlip", default=os.path.join(REPO, "build", "catlip"), help="catlip executable")
    ap.add_argument("--no-catlip", action="store_true", help="time PyTorch only")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--runs", type=int, default=3, help="runs per thread count and side (default 3)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per run (default 3)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--classes", type=int, default=24320)
    ap.add_argument("--model", default="vit_tiny")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--patch-size", type=int, default=16)
    ap.add_argument("--torch-configs", default="best", metavar="SET",
                    help="PyTorch configurations: given, best (default), all, or a comma-separated "
                         "list of CORETYPE/ATEN/WAIT names, e.g. SkylakeX/avx512/PASSIVE")
    ap.add_argument("--no-bf16", action="store_true", help="skip PyTorch's bf16 autocast reference runs")
    ap.add_argument("--json", metavar="FILE", help="also write every run's numbers to FILE")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--describe", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--warmup", type=int, default=1, help=argparse.SUPPRESS)
    a = ap.parse_args()

    try:
        threads = [int(t) for t in a.threads.split(",") if t.strip()]
    except ValueError:
        print(f"step_vs_pytorch: error: --threads '{a.threads}' is not a comma-separated list of integers",
              file=sys.stderr)
        return 2
    if a.torch_worker:
        a.threads = threads[0]
        return torch_worker(a)
    if a.describe:
        return describe_worker(a)
    for name, v in (("--runs", a.runs), ("--steps", a.steps), ("--batch", a.batch), ("--classes", a.classes)):
        if v < 1:
            print(f"step_vs_pytorch: error: {name} must be at least 1, got {v}", file=sys.stderr)
            return 2
    if not threads or min(threads) < 1:
        print(f"step_vs_pytorch: error: --threads '{a.threads}' needs counts of at least 1", file=sys.stderr)
        return 2
    if not a.no_catlip and not (os.path.isfile(a.catlip) and os.access(a.catlip, os.X_OK)):
        print(f"step_vs_pytorch: error: catlip executable '{a.catlip}' not found "
              "(build it, pass --catlip PATH, or --no-catlip)", file=sys.stderr)
        return 2
    flags = cpu_flags()
    has_avx512 = all(f in flags for f in AVX512_FLAGS)
    try:
        configs = torch_configs(a.torch_configs, has_avx512)
    except ValueError as e:
        print(f"step_vs_pytorch: error: --torch-configs: {e}", file=sys.stderr)
        return 2

    rc, out, err, _, _ = run_child([sys.executable, os.path.abspath(__file__), "--describe"], dict(os.environ))
    if rc != 0:
        last = (err.strip().splitlines() or ["no output"])[-1]
        print(f"step_vs_pytorch: error: cannot start PyTorch: {last}", file=sys.stderr)
        return 2
    described = json.loads(out.strip().splitlines()[-1])
    print("\n".join(described["lines"]))
    if a.model not in described["presets"]:
        print(f"step_vs_pytorch: error: unknown --model '{a.model}' ({', '.join(described['presets'])})",
              file=sys.stderr)
        return 2
    dim, depth, heads = described["presets"][a.model]
    flops_img = train_flops_per_image(dim, depth, heads, a.image_size, a.patch_size, a.classes)
    print(f"config: {a.model}/{a.patch_size} image {a.image_size} batch {a.batch} classes {a.classes}, "
          f"{a.runs} run(s) x (1 warm-up + {a.steps} timed steps) per side, configuration and thread count")
    print("statistic (both sides): batch / median of the per-step times, warm-up step excluded; "
          "medians over runs below")
    given = os.environ.get("OPENBLAS_CORETYPE", "(unset)")
    print(f"PyTorch configurations ({a.torch_configs}): {', '.join(configs)}\n"
          f"  = OPENBLAS_CORETYPE (given: {given}) / ATEN_CPU_CAPABILITY (default: unset) / "
          f"OMP_WAIT_POLICY (default: unset); OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = threads"
          + ("" if has_avx512 else "\n  no AVX-512 on this CPU (flags lack one of "
             f"{', '.join(AVX512_FLAGS)}): no SkylakeX or avx512 configurations")
          + ("\n  at 1 thread: " + ", ".join(configs_at(configs, 1)) + " (no worker threads for a wait "
             "policy to act on)" if 1 in threads and configs_at(configs, 1) != configs else ""))
    print("catlip runs: environment as given")
    print(PINNING)
    print(f"FLOPs per image per training step (3 x forward matmuls): {flops_img / 1e9:.3f} GFLOP")
    print("load average before: %.2f %.2f %.2f (other work on the machine skews every number)" % os.getloadavg())

    runs = {t: {"catlip": [], "torch": {n: [] for n in configs_at(configs, t)},
                "torch_bf16": {"config": None, "runs": []}, "catlip_bf16": [], "catlip_fp32_paired": [],
                "rounds": []} for t in threads}
    failed = False
    for t in threads:
        for r in range(a.runs):
            if not a.no_catlip:
                rc, out, err, rss, secs = run_child(catlip_args(a, t), dict(os.environ), first_cpus(t))
                try:
                    if rc != 0:
                        raise ValueError(f"(exit {rc}): " +
                                         (err.strip().splitlines() or out.strip().splitlines() or ["no output"])[-1])
                    v = parse_result_line(out)
                except ValueError as e:
                    print(f"threads {t} run {r + 1} catlip: FAILED {e}")
                    failed = True
                else:
                    v["rss_mb"], v["wall_s"] = rss, secs
                    runs[t]["catlip"].append(v)
                    med = f" (median step {v['step_ms_median']:.0f} ms)" if "step_ms_median" in v else ""
                    print(f"threads {t} run {r + 1} {'catlip':<31}: {v['images_per_second']:8.2f} img/s{med}, "
                          f"peak RSS {rss:5.0f} MB, {secs:5.1f} s wall, {v['gflops']:.1f} GFLOP/s, sgemm "
                          f"{v['sgemm_gflops']:.1f} GFLOP/s (share {v['sgemm_share']:.2f}); "
                          f"{v.get('threads_line', '')}", flush=True)
            for name in runs[t]["torch"]:
                failed |= not run_torch(a, t, r, name, False, runs[t]["torch"][name])
        if not a.no_bf16:
            rates = {n: median([v["images_per_second"] for v in vs]) for n, vs in runs[t]["torch"].items() if vs}
            if rates:
                best = max(rates, key=rates.get)
                runs[t]["torch_bf16"]["config"] = best
                for r in range(a.runs):
                    # one round: catlip fp32, catlip bf16, PyTorch bf16, back to back
                    plan = [] if a.no_catlip else [
                        ("fp32", runs[t]["catlip_fp32_paired"], lambda l: run_catlip(a, t, r, "fp32", l, " (round)")),
                        ("bf16", runs[t]["catlip_bf16"], lambda l: run_catlip(a, t, r, "bf16", l))]
                    plan.append(("torch_bf16", runs[t]["torch_bf16"]["runs"],
                                 lambda l: run_torch(a, t, r, best, True, l)))
                    got = {}
                    for key, lst, run in plan:
                        if run(lst):
                            got[key] = lst[-1]["images_per_second"]
                        else:
                            failed = True
                    runs[t]["rounds"].append(got)

    print()
    print("Every PyTorch configuration (medians over runs; ratio = catlip img/s / this configuration's):")
    print(f"{'threads':>7} {'configuration':<26} {'img/s':>7} {'ratio':>6} {'GFLOP/s':>7} {'of sgemm':>8} "
          f"{'MB':>5}  verified")
    summary = {}
    for t in threads:
        c = runs[t]["catlip"]
        c_ips = median([v["images_per_second"] for v in c])
        # FLOPs per image: catlip's own count if it gave one (gflops / img/s), else ours.
        f_img = median([v["gflops"] * 1e9 / v["images_per_second"] for v in c
                        if v["images_per_second"] > 0]) if c else flops_img
        sg = median([v["sgemm_gflops"] for v in c])
        rows = {}
        for name, vs in runs[t]["torch"].items():
            if not vs:
                print(f"{t:>7} {name:<26} {'FAILED':>7}")
                continue
            ips = median([v["images_per_second"] for v in vs])
            rows[name] = {"images_per_second": ips, "gflops": ips * f_img / 1e9, "sgemm_share": ips * f_img / 1e9 / sg,
                          "rss_mb": median([v["rss_mb"] for v in vs]), "ratio": c_ips / ips,
                          "verified": summarise(vs, "verified"), "not_in_effect": summarise(vs, "not_in_effect")}
        best = max(rows, key=lambda n: rows[n]["images_per_second"]) if rows else None
        for name, row in rows.items():
            flag = f"  NOT IN EFFECT: {row['not_in_effect']}" if row["not_in_effect"] else ""
            print(f"{t:>7} {name + (' *' if name == best else ''):<26} {row['images_per_second']:>7.2f} "
                  f"{fmt(row['ratio'], '>6.2f')} {row['gflops']:>7.1f} {fmt(row['sgemm_share'], '>8.2f')} "
                  f"{row['rss_mb']:>5.0f}  {row['verified']}{flag}")
        bf = runs[t]["torch_bf16"]
        bf_row = None
        if bf["runs"]:
            ips = median([v["images_per_second"] for v in bf["runs"]])
            bf_row = {"config": bf["config"], "images_per_second": ips, "gflops": ips * f_img / 1e9,
                      "rss_mb": median([v["rss_mb"] for v in bf["runs"]]),
                      "verified": summarise(bf["runs"], "verified"),
                      "not_in_effect": summarise(bf["runs"], "not_in_effect")}
        cb = runs[t]["catlip_bf16"]
        cb_row = None
        if cb:
            cb_row = {"images_per_second": median([v["images_per_second"] for v in cb]),
                      "gflops": median([v["gflops"] for v in cb]),
                      "rss_mb": median([v["rss_mb"] for v in cb]),
                      "bf16_peak_gflops": median([v.get("bf16_peak_gflops", math.nan) for v in cb]),
                      "bf16_peak_share": median([v.get("bf16_peak_share", math.nan) for v in cb]),
                      "fma_peak_share_fp32": median([v.get("fma_peak_share", math.nan) for v in c]) if c else math.nan,
                      "bf16_gemm_gflops": median([v.get("bf16_gemm_gflops", math.nan) for v in cb]),
                      "matmul_peak_share": median([v.get("matmul_peak_share", math.nan) for v in cb]),
                      # the rounds' own ratios (runs seconds apart), medians over rounds
                      "round_bf16_over_fp32": median([g["bf16"] / g["fp32"] for g in runs[t]["rounds"]
                                                      if "bf16" in g and "fp32" in g]),
                      "round_bf16_over_torch_bf16": median([g["bf16"] / g["torch_bf16"]
                                                            for g in runs[t]["rounds"]
                                                            if "bf16" in g and "torch_bf16" in g])}
        summary[t] = {"catlip_images_per_second": c_ips, "sgemm_gflops": sg, "flops_per_image": f_img,
                      "torch": rows, "fastest_torch": best, "torch_bf16": bf_row, "catlip_bf16": cb_row}
    print("  * = fastest float32 configuration at that thread count (the one the ratio below uses)")

    print()
    print(f"{'threads':>7} {'catlip img/s':>12} {'torch img/s':>11} {'ratio':>6} {'catlip MB':>9} "
          f"{'torch MB':>8} {'sgemm share':>11} {'catlip GFLOP/s':>14} {'torch GFLOP/s':>13} "
          f"{'of catlip sgemm':>15}  fastest PyTorch configuration")
    for t in threads:
        s, c = summary[t], runs[t]["catlip"]
        if s["fastest_torch"] is None:
            print(f"{t:>7} (no PyTorch run succeeded)")
            continue
        p = s["torch"][s["fastest_torch"]]
        print(f"{t:>7} {fmt(s['catlip_images_per_second'], '>12.2f')} {p['images_per_second']:>11.2f} "
              f"{fmt(p['ratio'], '>6.2f')} {fmt(median([v['rss_mb'] for v in c]), '>9.0f')} {p['rss_mb']:>8.0f} "
              f"{fmt(median([v['sgemm_share'] for v in c]), '>11.2f')} "
              f"{fmt(median([v['gflops'] for v in c]), '>14.1f')} {p['gflops']:>13.1f} "
              f"{fmt(p['sgemm_share'], '>15.2f')}  {s['fastest_torch']}")
    for t in threads:
        b = summary[t]["torch_bf16"]
        if b:
            best = summary[t]["torch"][summary[t]["fastest_torch"]]
            flag = f"  NOT IN EFFECT: {b['not_in_effect']}" if b["not_in_effect"] else ""
            print(f"PyTorch bf16 autocast reference, {t} thread(s), {b['config']}: {b['images_per_second']:.2f} img/s "
                  f"({b['images_per_second'] / best['images_per_second']:.2f}x its float32, "
                  f"{b['gflops']:.1f} GFLOP/s, peak RSS {b['rss_mb']:.0f} MB; not in the ratio); "
                  f"{b['verified']}{flag}")
    if any(summary[t]["catlip_bf16"] for t in threads):
        print()
        print("bf16 (medians over runs): catlip train.precision bf16 against catlip fp32 and PyTorch bf16 "
              "autocast (its fastest float32 configuration's environment)")
        print(f"{'threads':>7} {'catlip bf16':>11} {'catlip fp32':>11} {'bf16/fp32':>9} {'torch bf16':>10} "
              f"{'vs torch bf16':>13} {'bf16 peak share':>15} {'matmuls share':>13} {'fp32 peak share':>15} "
              f"{'bf16 MB':>7} {'fp32 MB':>7} {'rounds: bf16/fp32':>17} {'vs torch bf16':>13}")
        for t in threads:
            b, s = summary[t]["catlip_bf16"], summary[t]
            if not b:
                continue
            tb = s["torch_bf16"]
            c_mb = median([v["rss_mb"] for v in runs[t]["catlip"]]) if runs[t]["catlip"] else math.nan
            print(f"{t:>7} {b['images_per_second']:>11.2f} {fmt(s['catlip_images_per_second'], '>11.2f')} "
                  f"{fmt(b['images_per_second'] / s['catlip_images_per_second'], '>8.2f')}x "
                  f"{fmt(tb['images_per_second'] if tb else math.nan, '>10.2f')} "
                  f"{fmt(b['images_per_second'] / tb['images_per_second'] if tb else math.nan, '>12.2f')}x "
                  f"{fmt(b['bf16_peak_share'], '>15.2f')} {fmt(b['matmul_peak_share'], '>13.2f')} "
                  f"{fmt(b['fma_peak_share_fp32'], '>15.2f')} "
                  f"{b['rss_mb']:>7.0f} {fmt(c_mb, '>7.0f')} "
                  f"{fmt(b['round_bf16_over_fp32'], '>16.2f')}x {fmt(b['round_bf16_over_torch_bf16'], '>12.2f')}x")
        print("bf16 peak share = catlip bf16 step GFLOP/s over the VDPBF16PS peak it measures (all threads); "
              "matmuls share = the same for the matmul regions alone (linear layers and attention products "
              "with their fused epilogues: bench step --profile); fp32 peak share = the fp32 step over the "
              "VFMADD231PS peak; rounds: the median of each round's own ratios (catlip bf16 over the catlip "
              "fp32 run just before it, over the PyTorch bf16 run just after it)")
    if any(runs[t]["catlip"] for t in threads):
        c_all = [v["gflops"] * 1e9 / v["images_per_second"] for t in threads for v in runs[t]["catlip"]
                 if v["images_per_second"] > 0]
        print(f"\nFLOPs/image: catlip counts {median(c_all) / 1e9:.3f} GFLOP, this script {flops_img / 1e9:.3f} GFLOP")
    print("img/s and MB are medians over runs (MB: each child's peak RSS); ratio = catlip / the fastest "
          "PyTorch configuration's img/s;\nsgemm share = catlip's step GFLOP/s over the sgemm GFLOP/s it "
          "measured on this machine with the same threads;\n'of catlip sgemm' = PyTorch's step GFLOP/s "
          "(same FLOP count) over that same sgemm rate.")
    print(PINNING)
    print("load average after: %.2f %.2f %.2f" % os.getloadavg())
    if a.json:
        with open(a.json, "w") as f:
            json.dump(no_nan({"config": vars(a), "flops_per_image": flops_img, "has_avx512": has_avx512,
                       "torch_configs": {n: {"name": n, "env_changes": env_changes(n)} for n in configs},
                       "pinning": PINNING, "summary": {str(t): v for t, v in summary.items()},
                       "runs": {str(t): v for t, v in runs.items()}}), f, indent=1)
    return 1 if failed else 0


def env_changes(name):
    """What configuration `name` changes in the environment (threads aside), for the JSON."""
    env, _ = torch_env(name, 0)
    keys = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "ATEN_CPU_CAPABILITY", "OMP_WAIT_POLICY",
            "OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY")
    return {k: env.get(k) for k in keys if env.get(k) != os.environ.get(k)}


if __name__ == "__main__":
    sys.exit(main())
