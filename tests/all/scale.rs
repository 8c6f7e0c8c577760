//! `hwbench scale`: a real climb on the CPU over a tiny ladder, bad ladders refused in one line,
//! and fake GPU workers that make the parent take the over-budget and out-of-memory paths and
//! survive a Ctrl-C.

use std::process::Stdio;
use std::time::{Duration, Instant};

use candle_core::Device;

use hwbench::engine::fused::Kernels;
use hwbench::engine::session::{self, Prepared};
use hwbench::engine::synthetic::{self, Size};
use hwbench::scale::ladder;
use serde_json::Value;

use crate::util::{self, Dir, fixture, hwbench, run};

/// The first `epochs` losses of full-batch SGD at `size` with `kernels`.
fn losses(size: Size, kernels: Kernels, epochs: u64) -> Vec<f32> {
    let (x, y) = synthetic::rows(3, size);
    let prepared = Prepared::rows(&x, &y, Device::Cpu, kernels).unwrap();
    session::train_epochs(&prepared, &synthetic::init_weights(3, size), 0.05, epochs)
        .unwrap()
        .curve
}

#[test]
fn fused_and_stock_kernels_give_the_same_losses_at_every_size() {
    // Small (one thread everywhere) and large enough for the fused ops' threaded passes.
    for size in [
        ladder::DEFAULT[1],
        ladder::DEFAULT[2],
        ladder::DEFAULT[4],
        "5:300:7:200".parse().unwrap(),
    ] {
        let fused = losses(size, Kernels::Fused, 8);
        let stock = losses(size, Kernels::Stock, 8);
        for (epoch, (f, s)) in fused.iter().zip(&stock).enumerate() {
            let gap = (f - s).abs() / s.abs();
            assert!(gap < 2e-5, "{size} epoch {}: {f} vs {s}", epoch + 1);
        }
        assert!(fused[7] < fused[0], "{size}: the loss goes down");
    }
}

#[test]
fn a_scale_point_trains_with_the_engines_loop() {
    // Behaviour, not source text: the first loss `hwbench scale` reports at a size is the one the
    // engine's training loop (`session::train`, which train-compare's worker runs too) computes
    // from the same seed's rows and weights, to the last bit.
    let (seed, lr, size) = (5, 0.02, Size::COURSE);
    let (x, y) = synthetic::rows(seed, size);
    let prepared = Prepared::rows(&x, &y, Device::Cpu, Kernels::Fused).unwrap();
    let trained =
        session::train_epochs(&prepared, &synthetic::init_weights(seed, size), lr, 1).unwrap();
    let report = util::run_json(
        &[
            "scale",
            "--quick",
            "--devices",
            "cpu",
            "--cpu-threads",
            "1",
            "--sizes",
            &size.to_string(),
            "--seed",
            &seed.to_string(),
            "--lr",
            &lr.to_string(),
            "--format",
            "json",
        ],
        &[],
    );
    let reported = report["devices"][0]["points"][0]["first_loss"]
        .as_f64()
        .expect("a first loss");
    assert_eq!(reported as f32, trained.curve[0]);
    assert_eq!(ladder::DEFAULT[0], Size::COURSE);
}

#[test]
fn a_tiny_ladder_climbs_on_the_cpu_with_every_figure() {
    let dir = Dir::new();
    let plot = dir.join("scale.svg");
    let json = util::run_json(
        &[
            "scale",
            "--devices",
            "cpu",
            "--cpu-threads",
            "1",
            "--sizes",
            "8:24:6:224,4:10:3:120",
            "--quick",
            "--plot",
            plot.to_str().unwrap(),
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(json["kind"], "scale");
    // Climbed in order of work, the course's model first.
    assert_eq!(json["ladder"][0]["size"]["hidden"], 10);
    assert_eq!(json["ladder"][0]["course"], true);
    assert_eq!(json["ladder"][0]["flop_per_epoch"], 48_646.0);
    let column = &json["devices"][0];
    assert_eq!(column["label"], "cpu×1");
    for point in column["points"].as_array().unwrap() {
        assert_eq!(point["status"], "measured", "{point}");
        assert_eq!(point["kernels"], "fused");
        assert!(point["epoch_s"]["median"].as_f64().unwrap() > 0.0);
        // Every timed run is there, in the order it ran, and the spread summarises them.
        let runs: Vec<f64> = point["epoch_s"]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(runs.len() as u64, point["epoch_s"]["n"].as_u64().unwrap());
        let fastest = runs.iter().copied().fold(f64::INFINITY, f64::min);
        assert_eq!(fastest, point["epoch_s"]["min"].as_f64().unwrap());
        assert!(point["gflops"].as_f64().unwrap() > 0.0);
        assert!(point["first_loss"].as_f64().unwrap() > 1.0, "{point}");
        assert!(point["epochs"].as_u64().unwrap() >= 3);
    }
    assert!(!json["verdict"].as_array().unwrap().is_empty());
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("cpu×1"), "{svg}");

    // The same report reads back, compares with itself, and every format renders.
    let path = dir.write_json("scale.json", &json);
    let (code, _, _) = run(&["diff", path.to_str().unwrap(), path.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    for format in ["table", "markdown", "prometheus"] {
        let (code, out, err) = run(&[
            "scale",
            "--devices",
            "cpu",
            "--cpu-threads",
            "1",
            "--sizes",
            "4:10:3:120",
            "--quick",
            "--format",
            format,
        ]);
        assert_eq!(code, Some(0), "{err}");
        assert!(out.contains("4:10:3:120"), "{format}: {out}");
    }
}

#[test]
fn bad_ladders_and_caps_are_refused_in_one_line() {
    for (args, expected) in [
        (vec!["--sizes", "4:10:3"], "IN:HIDDEN:CLASSES:ROWS"),
        (vec!["--sizes", "a:b:c:d"], "IN:HIDDEN:CLASSES:ROWS"),
        (
            vec!["--sizes", "0:10:3:120"],
            "inputs must be between 1 and",
        ),
        (vec!["--sizes", "4:10:1:120"], "at least 2 classes"),
        (
            vec!["--sizes", "65536:65536:3:1"],
            "more than a tensor may hold",
        ),
        (vec!["--sizes", "4:10:3:120,4:10:3:120"], "twice"),
        (vec!["--max-epoch-seconds", "0"], "not a number of seconds"),
        (
            vec!["--max-epoch-seconds", "nan"],
            "not a number of seconds",
        ),
    ] {
        let mut full = vec!["scale", "--devices", "cpu"];
        full.extend(args.iter().copied());
        let (code, out, err) = run(&full);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(out.is_empty());
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

/// A fake CUDA companion whose epochs cost `fixed_s` plus the work at `gflops` GFLOP/s, reporting
/// `free_mib` of free memory; with `hang_after` it stops answering after that many points.
fn fake_gpu(dir: &Dir, fixed_s: f64, gflops: f64, free_mib: f64, hang_after: usize) -> String {
    dir.write(
        "fake_scale_gpu.py",
        format!(
            r#"import json, math, sys, time
send = lambda **m: (sys.stdout.write(json.dumps(m) + "\n"), sys.stdout.flush())
request = json.loads(sys.stdin.readline())
assert request["job"] == "scale", request
timing = request["timing"]
send(event="hello", protocol=4, hwbench_version="0.1.0", backend="cuda")
send(event="ready", name="NVIDIA H100 80GB HBM3", open_ms=1.0, setup_ms=0.0, first_epoch_ms=0.0,
     memory_free_mib={free_mib})
done = 0
prepared = {{}}
while True:
    step = json.loads(sys.stdin.readline())
    if step["step"] == "finish":
        send(event="finished")
        break
    if step["step"] == "run":
        key = json.dumps(step["size"], sort_keys=True)
        send(event="timed", size=step["size"], seconds=prepared[key], final_loss=2.4, memory_mib=100.0)
        continue
    size = step["size"]
    if done == {hang_after}:
        time.sleep(300)
    r, i, h, c = size["rows"], size["inputs"], size["hidden"], size["classes"]
    flop = 4*r*i*h + 6*r*h*c + 4*r*h + 8*r*c + 2*((i + 1)*h + (h + 1)*c)
    epoch = {fixed_s} + flop / ({gflops} * 1e9)
    over = epoch > step["max_epoch_s"]
    runs = timing["runs"]
    epochs = 0 if over else max(1, math.ceil(timing["work_s"] / runs["max"] / epoch))
    prepared[json.dumps(size, sort_keys=True)] = epoch * epochs
    send(event="prepared", size=size, kernels="stock", cold_epoch_s=epoch, warm_epoch_s=epoch,
         over_budget=over, epochs=epochs, first_loss=2.5, memory_mib=100.0)
    done += 1
"#
        ),
    );
    dir.executable(
        "hwbench-cuda",
        &format!("exec python3 '{}'", dir.join("fake_scale_gpu.py").display()),
    )
    .display()
    .to_string()
}

fn scale_on_fake_gpu(companion: &str, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec![
        "scale",
        "--devices",
        "cuda:0",
        "--cuda-companion",
        companion,
        "--format",
        "json",
    ];
    args.extend(extra);
    util::run_json_status(
        &args,
        &[("HWBENCH_GPU_FIXTURE", &fixture("gpu/healthy_h100.json"))],
    )
}

fn statuses(json: &Value) -> Vec<String> {
    json["devices"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_device_stops_climbing_before_an_epoch_over_the_cap() {
    let dir = Dir::new();
    // 1 GFLOP/s: the fifth point (147 MFLOP) takes 0.15 s, the sixth would take 1.4 s.
    let companion = fake_gpu(&dir, 1e-4, 1.0, 80_000.0, usize::MAX);
    let (code, json) = scale_on_fake_gpu(&companion, &["--max-epoch-seconds", "1"]);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(
        statuses(&json),
        [vec!["measured"; 5], vec!["over_budget"; 4]].concat()
    );
    let points = &json["devices"][0]["points"];
    let reason = points[5]["reason"].as_str().unwrap();
    assert!(reason.contains("predicted (cap 1.00 s)"), "{reason}");
    // The GPU's peak comes from NVML's figures for the GPU the worker named.
    assert!(json["devices"][0]["peak_gflops"].as_f64().unwrap() > 50_000.0);
    assert!(points[4]["peak_share"].as_f64().unwrap() < 0.001);

    // A point the worker itself finds over the cap ends the climb too.
    let (code, json) = scale_on_fake_gpu(&companion, &["--max-epoch-seconds", "0.0001"]);
    assert_eq!(code, Some(1), "nothing measured: {json}");
    assert_eq!(statuses(&json), vec!["over_budget"; 9]);
    let points = &json["devices"][0]["points"];
    assert!(
        points[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("an epoch took")
    );
    assert_eq!(
        points[1]["reason"],
        "a smaller point was already over budget"
    );
}

#[test]
fn a_point_that_needs_more_memory_than_is_free_is_skipped() {
    let dir = Dir::new();
    // 10 MiB free: the fifth point needs 8 MiB, but the four before it stay ready for their
    // rounds of timed runs and hold about 2 MiB; the sixth needs 36 MiB.
    let companion = fake_gpu(&dir, 1e-5, 1000.0, 10.0, usize::MAX);
    let (code, json) = scale_on_fake_gpu(&companion, &[]);
    assert_eq!(code, Some(0), "{json}");
    let statuses = statuses(&json);
    assert_eq!(
        statuses[..5],
        [vec!["measured"; 4], vec!["needs_memory"]].concat()
    );
    let reason = json["devices"][0]["points"][4]["reason"].as_str().unwrap();
    assert!(reason.starts_with("needs about 8 MiB, "), "{reason}");
    assert!(
        reason.ends_with(" MiB free") && !reason.contains("10 MiB free"),
        "{reason}"
    );
    assert_eq!(
        json["devices"][0]["points"][5]["reason"].as_str().unwrap()[..18],
        *"needs about 36 MiB"
    );
    let output = hwbench()
        .args([
            "scale",
            "--devices",
            "cuda:0",
            "--cuda-companion",
            &companion,
        ])
        .env("HWBENCH_GPU_FIXTURE", fixture("gpu/healthy_h100.json"))
        .output()
        .unwrap();
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(table.contains("needs about 36 MiB"), "{table}");
}

#[test]
fn ctrl_c_keeps_the_finished_points() {
    let dir = Dir::new();
    let companion = fake_gpu(&dir, 1e-4, 1000.0, 80_000.0, 3);
    let out = dir.join("scale.json");
    let mut child = hwbench()
        .args([
            "scale",
            "--devices",
            "cuda:0",
            "--cuda-companion",
            &companion,
            "--format",
            "json",
            "-o",
            out.to_str().unwrap(),
        ])
        .env("HWBENCH_GPU_FIXTURE", fixture("gpu/healthy_h100.json"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The fake hangs at its fourth point: give it time to get there.
    std::thread::sleep(Duration::from_secs(2));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(status.code(), Some(130));
    assert!(
        !out.exists(),
        "a stopped run does not take the report's name"
    );
    let partial: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("scale.json.partial")).unwrap())
            .unwrap();
    assert_eq!(partial["complete"], false);
    assert_eq!(partial["devices"][0]["status"], "interrupted");
    assert_eq!(
        statuses(&partial),
        [vec!["measured"; 3], vec!["not_run"; 6]].concat()
    );
}

#[test]
fn the_pytorch_worker_hashes_like_hwbench() {
    // The integer hash behind every synthetic value, computed by pytorch_worker.py's own
    // functions on Python integers (no torch needed): the values synthetic.rs pins.
    let dir = Dir::new();
    let script = dir.write("worker.py", hwbench::engine::pytorch::SCRIPT);
    let output = std::process::Command::new("python3")
        .args([
            "-I",
            "-c",
            "import runpy, sys; m = runpy.run_path(sys.argv[1]); \
             base = m['mix']((42 * 0x9E37 + m['STREAMS']['fc1_weight']) & m['MASK']); \
             print([m['mix'](i ^ base) for i in range(4)])",
            script.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "[1240776599, 3103899781, 1478886967, 3631986634]"
    );
}

#[test]
fn pytorch_climbs_the_same_ladder_from_the_same_first_loss() {
    let Some(python) = crate::cli_pytorch::torch_python() else {
        return;
    };
    let json = util::run_json(
        &[
            "scale",
            "--devices",
            "cpu",
            "--cpu-threads",
            "1",
            "--sizes",
            "4:10:3:120,16:48:16:384",
            "--quick",
            "--with-pytorch",
            "--python",
            &python,
            "--format",
            "json",
        ],
        &[],
    );
    let (candle, torch) = (&json["devices"][0], &json["devices"][1]);
    assert_eq!(torch["label"], "pytorch cpu×1");
    for (c, t) in candle["points"]
        .as_array()
        .unwrap()
        .iter()
        .zip(torch["points"].as_array().unwrap())
    {
        assert_eq!(t["status"], "measured", "{t}");
        assert_eq!(t["kernels"], "PyTorch");
        // Same data, same weights: the same first loss, to float32 rounding.
        let (lc, lt) = (
            c["first_loss"].as_f64().unwrap(),
            t["first_loss"].as_f64().unwrap(),
        );
        assert!((lc - lt).abs() < 1e-5 * lc, "{lc} vs {lt}");
    }
    let verdict = json["verdict"].to_string();
    assert!(verdict.contains("pytorch cpu×1's throughput"), "{verdict}");
}

/// A quick cpu×1 scale report of the course's size and the next.
fn two_point_report() -> Value {
    util::run_json(
        &[
            "scale",
            "--devices",
            "cpu",
            "--cpu-threads",
            "1",
            "--sizes",
            "4:10:3:120,8:24:6:224",
            "--quick",
            "--format",
            "json",
        ],
        &[],
    )
}

#[test]
fn diff_and_fleet_compare_scale_reports_point_by_point() {
    let dir = Dir::new();
    let json = two_point_report();
    // B: the second point 3× slower, beyond any noise.
    let mut slower = json.clone();
    util::scale_spread(&mut slower["devices"][0]["points"][1]["epoch_s"], 3.0);
    let a = dir.write_json("node1.json", &json);
    let b = dir.write_json("node3.json", &slower);
    let output = hwbench()
        .args(["diff", "--format", "json"])
        .args([&a, &b])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let diff: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(diff["compared"], "scale");
    let timings = diff["timings"].as_array().unwrap();
    assert_eq!(timings.len(), 2);
    assert_eq!(timings[1]["size"], "8:24:6:224");
    assert_eq!(timings[1]["noise"], false);
    assert!((timings[1]["ratio"].as_f64().unwrap() - 3.0).abs() < 1e-9);

    // Three identical nodes but one 3× slower at a point: that node is the outlier.
    dir.write_json("node2.json", &json);
    let output = hwbench()
        .args(["fleet", "--format", "json"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let fleet: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(fleet["reports_kind"], "scale");
    assert_eq!(fleet["groups"][0]["nodes"].as_array().unwrap().len(), 3);
    let outliers = fleet["outliers"].as_array().unwrap();
    assert_eq!(outliers.len(), 1, "{fleet}");
    assert_eq!(outliers[0]["node"], "node3");
    let reason = outliers[0]["reasons"][0].as_str().unwrap();
    assert!(
        reason.starts_with("cpu×1 at 8:24:6:224") && reason.contains("3.00× its group's ("),
        "{reason}"
    );
}

#[test]
fn a_point_at_the_budgets_edge_is_listed_but_not_a_difference() {
    let dir = Dir::new();
    let json = two_point_report();
    // B stopped before the second point. In A that point's epoch took over half the cap (the cap
    // set just above it): noise decides such a point, so it is listed, not counted.
    let second = json["devices"][0]["points"][1]["epoch_s"]["median"]
        .as_f64()
        .unwrap();
    let mut a = json.clone();
    a["config"]["max_epoch_s"] = Value::from(second * 1.5);
    let mut b = a.clone();
    b["devices"][0]["points"][1]["status"] = Value::from("over_budget");
    b["devices"][0]["points"][1]["epoch_s"] = Value::Null;
    let (pa, pb) = (dir.write_json("a.json", &a), dir.write_json("b.json", &b));
    let output = hwbench()
        .args(["diff", "--format", "json"])
        .args([&pa, &pb])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let diff: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        diff["budget_edge"][0],
        "cpu×1 at 8:24:6:224: measured in A, over budget in B"
    );
    // Far below the cap, the same change is a difference.
    a["config"]["max_epoch_s"] = Value::from(second * 100.0);
    b["config"]["max_epoch_s"] = a["config"]["max_epoch_s"].clone();
    let (pa, pb) = (dir.write_json("a.json", &a), dir.write_json("b.json", &b));
    let output = hwbench().arg("diff").args([&pa, &pb]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
}
