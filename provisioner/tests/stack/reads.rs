//! How plans read: concurrently, and what they print about throughput.

use super::*;

#[test]
fn a_plan_of_the_prod_stack_prints_its_throughput_ceiling() {
    let prod = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../stacks/prod.yaml");
    for verb in [&["plan", "--offline"][..], &["validate"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_provisioner"))
            .args(verb)
            .arg("--stack")
            .arg(&prod)
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .output()
            .unwrap();
        let text = stdout(&out);
        // 5 workers x a batch of 10 calls, 5 s an image: 600 a minute.
        assert!(
            text.contains("Throughput: at most 600 images a minute (no model capacity stated (model.max_in_flight): at most 5 worker(s) x 10 call(s)"),
            "{verb:?}: {text}{}",
            stderr(&out)
        );
        assert!(
            text.contains("a burst of 1,000 prompts is drained in about 100 s."),
            "{verb:?}: {text}"
        );
    }
}

/// `provisioner plan | head -1`: the reader goes away, the provisioner ends
/// quietly (141, as a tool SIGPIPE ended) without a panic.
#[test]
fn a_closed_standard_output_ends_quietly() {
    use std::io::Read as _;
    let prod = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../stacks/prod.yaml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(["plan", "--offline", "--stack"])
        .arg(&prod)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader is gone before the plan is printed: it has nowhere to go.
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(141), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[tokio::test]
async fn plan_reads_are_concurrent() {
    let f = Fixture::new("t-reads-").await;
    assert_ok(&f.cli(&["apply", "--yes", "--approve-broadening"]));
    let session = f.session();
    session.read().await.unwrap(); // warm up: moto loads each service on first use
    session.aws.calls.clear();
    let snapshot = session.read().await.unwrap();
    let plan = compute(
        &session.resources(),
        &snapshot,
        &session.options(Mode::Apply, false),
    );
    assert!(!plan.has_changes());
    let calls = session.aws.calls.snapshot();
    let stats = provisioner::aws::calls::stats(&calls);
    assert!(stats.calls >= 10, "{stats:?}");
    // Overlap, as a ratio: the calls' summed time over the span they took.
    // Read one after another it would be about 1; the resources' reads run
    // at once, each kind's chain at most three deep (get-url, attributes,
    // tags). (The longest chain of non-overlapping calls alone varied 2..5
    // on this 2-core machine for the same code: the SDK starts 65 calls
    // staggered, and one that ends early chains with one that starts late.)
    let busy: f64 = calls
        .iter()
        .filter_map(|c| c.end.map(|e| e.duration_since(c.start).as_secs_f64()))
        .sum();
    let overlap = busy / stats.span.as_secs_f64().max(1e-6);
    assert!(
        overlap >= 3.0,
        "reads must overlap: {overlap:.1}x, {stats:?}"
    );
    assert!(stats.sequential <= 6, "reads must overlap: {stats:?}");
}
