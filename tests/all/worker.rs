//! `hwbench worker` spoken to directly, as a companion would be: it checks what it is asked
//! before allocating anything, says it is alive during long runs, and sends a bounded curve.

use std::io::Write;
use std::process::Stdio;

use hwbench::engine::SyncPolicy;
use hwbench::engine::data;
use hwbench::engine::device::DeviceSpec;
use hwbench::engine::model::InitWeights;
use hwbench::engine::protocol::{HEARTBEAT, WorkerRequest};
use hwbench::train::protocol::{CompareJob, CompareRequest, SessionRequest, TrainConfig};
use serde_json::Value;

use crate::util::hwbench;

fn request(epochs: u64) -> WorkerRequest<CompareRequest> {
    WorkerRequest::new(CompareRequest::Compare(Box::new(CompareJob {
        session: SessionRequest {
            device: DeviceSpec::Cpu { threads: 1 },
            config: TrainConfig {
                hidden: 10,
                lr: 0.01,
                epochs,
                split_seed: 42,
                init: InitWeights::reference(),
            },
            policies: vec![SyncPolicy::NEVER],
            warmup_epochs: 1,
        },
        data: data::prepare(42),
    })))
}

/// Sends `request` (a JSON line) to a worker; returns its exit code and messages.
fn ask(request: &str) -> (Option<i32>, Vec<Value>) {
    tell(&[request])
}

/// Sends `lines` (JSON, the request first) to a worker; returns its exit code and messages.
fn tell(lines: &[&str]) -> (Option<i32>, Vec<Value>) {
    let mut child = hwbench()
        .arg("worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let messages = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (output.status.code(), messages)
}

#[test]
fn a_long_run_sends_heartbeats_and_a_bounded_curve() {
    // Three heartbeat intervals, however fast the machine: more than one even if the machine was
    // busier while it was measured.
    let epochs = crate::util::epochs_lasting(HEARTBEAT * 3);
    let (code, messages) = tell(&[
        &serde_json::to_string(&request(epochs)).unwrap(),
        &format!(r#"{{"step":"round","epochs":{epochs}}}"#),
        r#"{"step":"finish"}"#,
    ]);
    assert_eq!(code, Some(0));
    let events: Vec<&str> = messages
        .iter()
        .map(|m| m["event"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"progress"), "{events:?}");
    let finished = messages.last().unwrap();
    assert_eq!(finished["event"], "finished");
    let curve = finished["loss_curve"].as_array().unwrap();
    assert!(curve.len() <= 2050, "{} points", curve.len());
    assert_eq!(curve.last().unwrap()[0], epochs);
    assert_eq!(
        finished["loss_peak"][0], 1,
        "the loss is highest at the start"
    );
}

#[test]
fn out_of_range_requests_are_refused_before_anything_is_allocated() {
    for (field, value, expected) in [
        (
            "epochs",
            Value::from(1_000_000_000_000u64),
            "epochs 1000000000000 is not between",
        ),
        (
            "hidden",
            Value::from(100_000),
            "hidden units 100000 is not between",
        ),
        (
            "warmup_epochs",
            Value::from(0),
            "warm-up epochs 0 is not between",
        ),
    ] {
        let mut json = serde_json::to_value(request(10)).unwrap();
        let session = &mut json["session"];
        match field {
            "epochs" | "hidden" => session["config"][field] = value,
            _ => session[field] = value,
        }
        let (code, messages) = ask(&json.to_string());
        assert_eq!(code, Some(1), "{field}");
        let last = messages.last().unwrap();
        assert_eq!(last["event"], "error", "{field}");
        assert!(
            last["message"].as_str().unwrap().contains(expected),
            "{last}"
        );
    }
    let mut old = serde_json::to_value(request(10)).unwrap();
    old["protocol"] = Value::from(1);
    let (code, messages) = ask(&old.to_string());
    assert_eq!(code, Some(1));
    assert!(
        messages.last().unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("protocol 1")
    );
}

#[test]
fn a_scale_worker_prepares_each_point_it_is_sent_times_each_run_and_finishes_when_told() {
    let request = r#"{"protocol":4,"job":"scale","device":{"kind":"cpu","threads":1},"seed":0,"lr":0.01,"timing":{"runs":{"min":2,"max":2,"target":0.0},"work_s":0.02,"warmup_s":0.01}}"#;
    let point = r#"{"step":"point","size":{"inputs":4,"hidden":10,"classes":3,"rows":120},"max_epoch_s":1.0}"#;
    let run = r#"{"step":"run","size":{"inputs":4,"hidden":10,"classes":3,"rows":120}}"#;
    let stop = r#"{"step":"finish"}"#;
    let (code, messages) = tell(&[request, point, run, run, stop]);
    assert_eq!(code, Some(0), "{messages:?}");
    let events: Vec<&str> = messages
        .iter()
        .map(|m| m["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["hello", "ready", "prepared", "timed", "timed", "finished"]
    );
    assert!(messages[1]["memory_free_mib"].as_f64().unwrap() > 0.0);
    let prepared = &messages[2];
    assert_eq!(prepared["size"]["rows"], 120);
    // Each of the two runs takes its share of the 0.02 s: hundreds of the course's epochs.
    assert!(prepared["epochs"].as_u64().unwrap() >= 100, "{prepared}");
    assert_eq!(prepared["over_budget"], false);
    assert!(messages[3]["seconds"].as_f64().unwrap() > 0.0);
    // A run of a size that was not prepared is refused in one line.
    let (code, messages) = tell(&[request, run]);
    assert_eq!(code, Some(1));
    assert!(
        messages.last().unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("which is not prepared")
    );

    // A bad request is refused before the device opens.
    let refused = request.replace(r#""lr":0.01"#, r#""lr":-1"#);
    let (code, messages) = ask(&refused);
    assert_eq!(code, Some(1));
    let last = messages.last().unwrap();
    assert!(
        last["message"].as_str().unwrap().contains("learning rate"),
        "{last}"
    );
}
