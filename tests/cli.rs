//! The `sow` command line end to end on the tiny fixture model (CPU backend): images with their
//! parameters, reproduction from a PNG, SOW with the offline planner, batch resume and shards,
//! Ctrl-C between evaluations, and one clear message for each bad input.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sow_studio::diffusion::sow::planner::PlanSource;
use sow_studio::imaging::png::encode_rgb_png;
use sow_studio::pipeline::params::{from_png, sha256_hex, Method};
use sow_studio::weights::safetensors::{serialize_f32, SafetensorsHeader};
use sow_studio::weights::Scheme;

fn model() -> String {
    format!("{}/tests/fixtures/tiny-sd2", env!("CARGO_MANIFEST_DIR"))
}

/// A fresh folder for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sow-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A 64 × 64 condition: a red disc on blue, as a PNG file.
fn condition(dir: &Path) -> PathBuf {
    let side = 64;
    let rgb: Vec<u8> = (0..side * side)
        .flat_map(|i| {
            let (x, y) = ((i % side) as f64 - 31.5, (i / side) as f64 - 31.5);
            if x * x + y * y < 400.0 {
                [220, 40, 30]
            } else {
                [20, 60, 200]
            }
        })
        .collect();
    let path = dir.join("face.png");
    std::fs::write(&path, encode_rgb_png(&rgb, side, side).unwrap()).unwrap();
    path
}

/// `sow <args>`, without a Gemini key.
fn sow(args: &[&str]) -> Output {
    sow_command(args).output().expect("the sow binary runs")
}

fn sow_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sow"));
    command.args(args).env_remove("GEMINI_API_KEY");
    command
}

/// The fast run used throughout: 128 px canvas, one cycle.
const FAST: [&str; 8] = [
    "--size",
    "128",
    "--cycles",
    "1",
    "--device",
    "cpu",
    "--setting",
    "normal",
];

fn generate(dir: &Path, extra: &[&str], out: &str) -> Output {
    generate_command(dir, "a person in a forest", extra, out)
        .output()
        .expect("the sow binary runs")
}

/// `sow generate` on the tiny model with the fast options and a fresh condition file.
fn generate_command(dir: &Path, prompt: &str, extra: &[&str], out: &str) -> Command {
    let options: Vec<&str> = FAST.iter().chain(extra).copied().collect();
    command_with(dir, prompt, &options, out)
}

/// `sow generate` on the tiny model with exactly these options and a fresh condition file.
fn command_with(dir: &Path, prompt: &str, options: &[&str], out: &str) -> Command {
    let model = model();
    let cond = condition(dir);
    let out = dir.join(out);
    let mut args = vec![
        "generate",
        "--model",
        &model,
        "--condition",
        cond.to_str().unwrap(),
        "--prompt",
        prompt,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(options);
    sow_command(&args)
}

/// `sow generate --params-from <dir/png>` with the condition file beside it, on the CPU.
fn generate_from_params(dir: &Path, png: &str, out: &str) -> Output {
    sow(&[
        "generate",
        "--params-from",
        dir.join(png).to_str().unwrap(),
        "--condition",
        dir.join("face.png").to_str().unwrap(),
        "--out",
        dir.join(out).to_str().unwrap(),
        "--device",
        "cpu",
    ])
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_ok(output: &Output) {
    assert!(output.status.success(), "sow failed:\n{}", stderr(output));
}

/// Fails with exactly one `error:` line containing `needle`, and never panics.
fn assert_fails_with(output: &Output, needle: &str) {
    let text = stderr(output);
    assert!(!output.status.success(), "expected a failure, got:\n{text}");
    assert!(
        !text.contains("panicked"),
        "a panic instead of a message:\n{text}"
    );
    assert!(text.contains(needle), "expected {needle:?} in:\n{text}");
}

#[test]
fn ctrl_c_stops_a_run_between_evaluations_and_writes_nothing() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = scratch("interrupt");
    // Many cycles: the run is far from its end when the signal comes.
    let long = ["--size", "128", "--cycles", "40", "--device", "cpu"];
    let mut child = command_with(&dir, "a person in a forest", &long, "out.png")
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sow binary runs");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut text = String::new();
    // Standard error is a pipe: one line per step instead of a bar. Wait for the first.
    for line in lines.by_ref() {
        let line = line.unwrap();
        text.push_str(&line);
        text.push('\n');
        if line.contains("UNet evaluations, next:") {
            break;
        }
    }
    assert!(
        text.contains("UNet evaluations, next:"),
        "no step reported:\n{text}"
    );
    // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    for line in lines {
        text.push_str(&line.unwrap());
        text.push('\n');
    }
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "the shell's code for Ctrl-C:\n{text}"
    );
    assert!(
        text.contains("stopping after the current UNet evaluation"),
        "{text}"
    );
    assert!(text.contains("cancelled after"), "{text}");
    assert!(text.contains("nothing written"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("out."))
        .collect();
    assert!(
        left.is_empty(),
        "no output, not even a partial one: {left:?}"
    );
}

#[test]
fn cow_images_carry_their_parameters_and_reproduce_from_them() {
    let dir = scratch("cow");
    let made = generate(
        &dir,
        &["--method", "cow", "--box", "32,0,64", "--seed", "7"],
        "a.png",
    );
    assert_ok(&made);
    assert!(stderr(&made).contains("device: "), "the device is named");
    let png = std::fs::read(dir.join("a.png")).unwrap();
    let params = from_png(&png).unwrap();
    assert_eq!(params.method, Method::Cow);
    assert_eq!(params.seed, 7);
    assert_eq!(params.options.canvas, 128);
    assert_eq!(params.options.cycles, 1);
    assert_eq!(params.conditions[0].placement.to_string(), "32,0,64");
    let cond = std::fs::read(dir.join("face.png")).unwrap();
    assert_eq!(params.conditions[0].image_sha256, sha256_hex(&cond));
    assert!(params.plan.is_none());

    // The PNG alone (plus the condition file) makes the same image again, byte for byte.
    let again = generate_from_params(&dir, "a.png", "b.png");
    assert_ok(&again);
    assert_eq!(std::fs::read(dir.join("b.png")).unwrap(), png);

    // The UNet's scheme is recorded (q8 by default) and reused by --params-from: an image made
    // with the f32 UNet differs, and comes back byte for byte from its own parameters.
    assert_eq!(params.model.unet_weights, Some(Scheme::Q8));
    let exact = generate(
        &dir,
        &[
            "--method", "cow", "--box", "32,0,64", "--seed", "7", "--scheme", "f32",
        ],
        "f32.png",
    );
    assert_ok(&exact);
    let exact_png = std::fs::read(dir.join("f32.png")).unwrap();
    assert_eq!(
        from_png(&exact_png).unwrap().model.unet_weights,
        Some(Scheme::F32)
    );
    assert_ne!(
        exact_png, png,
        "the f32 and 8-bit UNets make different images"
    );
    let again = generate_from_params(&dir, "f32.png", "f32-again.png");
    assert_ok(&again);
    assert_eq!(std::fs::read(dir.join("f32-again.png")).unwrap(), exact_png);

    // Another seed, another image; latents written on request.
    let latents = dir.join("c.safetensors");
    let other = generate(
        &dir,
        &[
            "--method",
            "cow",
            "--box",
            "32,0,64",
            "--seed",
            "8",
            "--save-latents",
            latents.to_str().unwrap(),
        ],
        "c.png",
    );
    assert_ok(&other);
    assert_ne!(std::fs::read(dir.join("c.png")).unwrap(), png);
    let bytes = std::fs::read(&latents).unwrap();
    let header = SafetensorsHeader::parse("latents", &bytes, Some(bytes.len() as u64)).unwrap();
    assert_eq!(header.tensors["final_latent"].shape, vec![1, 4, 16, 16]);
    assert!(header.tensors.contains_key("cycle.1"));
    assert!(header.tensors.keys().any(|k| k.starts_with("crop_state.")));
}

#[test]
fn sow_plans_offline_without_a_key_and_a_saved_plan_replays() {
    let dir = scratch("sow");
    let plan = dir.join("plan.json");
    let latents = dir.join("a.safetensors");
    let made = generate(
        &dir,
        &[
            "--save-plan",
            plan.to_str().unwrap(),
            "--save-latents",
            latents.to_str().unwrap(),
        ],
        "a.png",
    );
    assert_ok(&made);
    // The plan is also saved beside the latents.
    assert_eq!(
        std::fs::read(dir.join("a.plan.json")).unwrap(),
        std::fs::read(&plan).unwrap()
    );
    assert!(stderr(&made).contains("offline plan"));
    let png = std::fs::read(dir.join("a.png")).unwrap();
    let params = from_png(&png).unwrap();
    assert_eq!(params.method, Method::Sow);
    let recorded = params.plan.expect("SOW records its plan");
    assert_eq!(recorded.source, PlanSource::Offline);
    assert!(params.attention.is_some());

    let replayed = generate(&dir, &["--plan", plan.to_str().unwrap()], "b.png");
    assert_ok(&replayed);
    let replayed = from_png(&std::fs::read(dir.join("b.png")).unwrap()).unwrap();
    assert_eq!(replayed.plan.unwrap().conditions, recorded.conditions);

    // Without modulation the run is COW's at the plan's box: the modulation changes the image.
    let cow = generate(
        &dir,
        &[
            "--method",
            "cow",
            "--box",
            &recorded.conditions[0].square.to_string(),
        ],
        "c.png",
    );
    assert_ok(&cow);
    assert_ne!(std::fs::read(dir.join("c.png")).unwrap(), png);
}

#[test]
fn a_batch_resumes_and_splits_into_shards() {
    let dir = scratch("batch");
    condition(&dir);
    let jobs = dir.join("jobs.jsonl");
    std::fs::write(
        &jobs,
        "# two jobs\n\
         {\"id\": \"one\", \"condition\": \"face.png\", \"prompt\": \"a cat\", \"method\": \"cow\", \"box\": \"32,0,64\", \"size\": 128, \"cycles\": 1}\n\
         \n\
         {\"id\": \"two\", \"condition\": \"face.png\", \"prompt\": \"a dog\", \"method\": \"cow\", \"box\": \"32,32,64\", \"size\": 128, \"cycles\": 1, \"seed\": 3}\n",
    )
    .unwrap();
    let out = dir.join("out");
    let model = model();
    let batch = |extra: &[&str]| {
        let mut args = vec![
            "batch",
            jobs.to_str().unwrap(),
            "--model",
            &model,
            "--out",
            out.to_str().unwrap(),
            "--device",
            "cpu",
        ];
        args.extend(extra);
        sow(&args)
    };
    assert_ok(&batch(&["--shard", "1/2"]));
    assert!(!out.join("one.png").exists());
    assert!(out.join("two.png").exists());
    let two = std::fs::read(out.join("two.png")).unwrap();

    let rest = batch(&[]);
    assert_ok(&rest);
    assert!(stderr(&rest).contains("two: done before, skipped"));
    assert!(out.join("one.png").exists());
    assert_eq!(std::fs::read(out.join("two.png")).unwrap(), two);
    assert_eq!(from_png(&two).unwrap().seed, 3);

    std::fs::write(&jobs, "{\"id\": \"x\", \"colour\": \"red\"}\n").unwrap();
    assert_fails_with(&batch(&[]), "line 1: unknown field `colour`");
}

#[test]
fn every_bad_input_gets_one_clear_message() {
    let dir = scratch("bad");
    let cond = condition(&dir);
    let model = model();
    let out = dir.join("never.png");
    let base = |extra: &[&str]| {
        let mut args = vec![
            "generate",
            "--model",
            &model,
            "--out",
            out.to_str().unwrap(),
            "--method",
            "cow",
        ];
        args.extend(FAST);
        args.extend(extra);
        sow(&args)
    };
    let c = cond.to_str().unwrap();
    assert_fails_with(&base(&["--condition", c]), "a prompt is needed");
    assert_fails_with(&base(&["--prompt", "x"]), "a visual condition is needed");
    assert_fails_with(
        &base(&["--condition", "missing.png", "--prompt", "x"]),
        "cannot read missing.png",
    );
    assert_fails_with(
        &base(&["--condition", c, "--prompt", "x", "--box", "96,0,64"]),
        "condition 1",
    );
    assert_fails_with(
        &base(&["--condition", c, "--prompt", "x", "--box", "3,0,64"]),
        "multiple",
    );
    assert_fails_with(
        &base(&[
            "--condition",
            c,
            "--prompt",
            "x",
            "--mask",
            "-",
            "--mask",
            "-",
        ]),
        "1 condition(s) but 2 --mask",
    );
    let corrupt = dir.join("corrupt.png");
    let mut bytes = std::fs::read(&cond).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&corrupt, bytes).unwrap();
    assert_fails_with(
        &base(&["--condition", corrupt.to_str().unwrap(), "--prompt", "x"]),
        "corrupt.png",
    );
    assert_fails_with(
        &base(&[
            "--condition",
            c,
            "--prompt",
            "x",
            "--start-state",
            "3",
            "--end-state",
            "5",
        ]),
        "must be below the start state",
    );
    let noise = dir.join("noise.safetensors");
    let with_noise = |name: &str| {
        std::fs::write(
            &noise,
            serialize_f32(&[(name, &[1, 4, 16, 16], &[0.0; 1024])]),
        )
        .unwrap();
        base(&[
            "--condition",
            c,
            "--prompt",
            "x",
            "--noise",
            noise.to_str().unwrap(),
        ])
    };
    assert_fails_with(&with_noise("foo"), "\"foo\" is not one of noise.0");
    assert_fails_with(&with_noise("noise.0"), "noise");
    assert_fails_with(
        &sow(&[
            "generate",
            "--params-from",
            cond.to_str().unwrap(),
            "--out",
            "x.png",
        ]),
        "carries no SOW Studio parameters",
    );
    assert_fails_with(
        &generate(&dir, &["--planner", "gemini"], "never.png"),
        "--planner gemini needs a key in GEMINI_API_KEY",
    );
    assert_fails_with(
        &sow(&[
            "generate",
            "--condition",
            c,
            "--prompt",
            "x",
            "--method",
            "sew",
        ]),
        "use sow or cow",
    );
    assert!(!out.exists(), "no output file after a failure");
    assert!(!dir.join("never.png.partial").exists());
}

#[path = "support/loopback.rs"]
mod loopback;

/// What a stub Gemini answers to each of the planner's three calls (told apart by their
/// response schemas), on the tiny model's 128 px canvas.
fn gemini_answer(request: &loopback::Request) -> loopback::Reply {
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    let properties = &body["generationConfig"]["responseSchema"]["properties"];
    let answer = if properties.get("intensified_prompt").is_some() {
        serde_json::json!({
            "description": "a red disc on blue",
            "intensified_prompt": "a knight with a red shield in a misty forest",
            "human_face": true
        })
    } else if properties.get("boxes").is_some() {
        serde_json::json!({"boxes": [{"condition": 1, "box": {"x": 40, "y": 8, "w": 64, "h": 64}}]})
    } else {
        serde_json::json!({"regions": [{"condition": 1, "related": [{"box": {"x": 16, "y": 64, "w": 96, "h": 64}}]}]})
    };
    let reply = serde_json::json!({
        "candidates": [{"content": {"parts": [{"text": answer.to_string()}], "role": "model"},
                        "finishReason": "STOP", "index": 0}],
        "modelVersion": "gemini-stub"
    });
    loopback::Reply::Respond(loopback::Response::json(&reply.to_string()))
}

/// `sow generate` (SOW) with a key, against a Gemini at `endpoint`.
fn generate_with_gemini(dir: &Path, endpoint: &str, out: &str) -> Output {
    let extra = [
        "--gemini-endpoint",
        endpoint,
        "--gemini-model",
        "gemini-stub",
    ];
    generate_command(dir, "a knight", &extra, out)
        .env("GEMINI_API_KEY", "test-key-0123456789")
        .output()
        .expect("the sow binary runs")
}

#[test]
fn gemini_plans_over_http_and_its_failures_fall_back_without_showing_the_key() {
    let dir = scratch("gemini");
    let server = loopback::Loopback::start(gemini_answer);
    let made = generate_with_gemini(&dir, &server.url(), "a.png");
    assert_ok(&made);
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "three planner calls");
    assert!(requests
        .iter()
        .all(|r| r.header("x-goog-api-key") == Some("test-key-0123456789")));
    let params = from_png(&std::fs::read(dir.join("a.png")).unwrap()).unwrap();
    let plan = params.plan.unwrap();
    assert!(
        matches!(plan.source, PlanSource::Gemini { .. }),
        "{:?}",
        plan.source
    );
    assert_eq!(plan.prompt, "a knight with a red shield in a misty forest");
    assert_eq!(
        params.prompt, "a knight",
        "the user's prompt is kept beside P*"
    );

    let failing = loopback::Loopback::start(|_| {
        loopback::Reply::Respond(loopback::Response::new(
            500,
            r#"{"error": {"code": 500, "message": "internal", "status": "INTERNAL"}}"#,
        ))
    });
    let fallback = generate_with_gemini(&dir, &failing.url(), "b.png");
    assert_ok(&fallback);
    let text = stderr(&fallback);
    assert!(
        text.contains("failed, so the offline plan is used"),
        "{text}"
    );
    assert!(
        !text.contains("test-key-0123456789"),
        "the key leaked:\n{text}"
    );
    let params = from_png(&std::fs::read(dir.join("b.png")).unwrap()).unwrap();
    assert!(matches!(
        params.plan.unwrap().source,
        PlanSource::Fallback { .. }
    ));
}

#[test]
fn the_toy_experiment_writes_its_grids_table_and_plot() {
    let dir = scratch("toy");
    let out = dir.join("toy");
    let model = model();
    let run = sow(&[
        "toy",
        "--model",
        &model,
        "--out",
        out.to_str().unwrap(),
        "--size",
        "64",
        "--steps",
        "2",
        "--variant",
        "merge,increase",
        "--layout",
        "white-top,gray-left",
        "--device",
        "cpu",
    ]);
    assert_ok(&run);
    // One row per variant, layout and merge state 0..=2.
    let csv = std::fs::read_to_string(out.join("toy.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 2 * 3, "{csv}");
    assert!(csv
        .lines()
        .skip(1)
        .all(|l| l.starts_with("merge,") || l.starts_with("increase,")));
    let svg = std::fs::read_to_string(out.join("toy.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for variant in ["merge", "increase"] {
        let png = std::fs::read(out.join(format!("{variant}.png"))).unwrap();
        let image = sow_studio::imaging::decode_image(&png, variant).unwrap();
        // Rows: merge states; columns: layouts; 64 px cells.
        assert_eq!((image.rgb.width(), image.rgb.height()), (2 * 64, 3 * 64));
    }
    assert!(!out.join("decrease.png").exists());
}

#[test]
fn sow_pack_writes_a_pack_that_generate_loads_and_names_in_the_image() {
    let dir = scratch("pack");
    let pack = dir.join("pack");
    let model = model();
    let packed = sow(&["pack", "--model", &model, "--out", pack.to_str().unwrap()]);
    assert_ok(&packed);
    let stdout = String::from_utf8_lossy(&packed.stdout);
    assert!(
        stdout.contains("packed") && stdout.contains("--model pack:"),
        "{stdout}"
    );
    assert!(stderr(&packed).contains("text encoder q8, VAE q8, UNet q4"));
    assert!(pack.join("pack.json").is_file());

    let pack_model = format!("pack:{}", pack.display());
    let cond = condition(&dir);
    let out = dir.join("from-pack.png");
    let mut args = vec![
        "generate",
        "--model",
        &pack_model,
        "--condition",
        cond.to_str().unwrap(),
        "--prompt",
        "a person in a forest",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(FAST);
    let generated = sow(&args);
    assert_ok(&generated);
    let png = std::fs::read(&out).unwrap();
    let needle = pack_model.as_bytes();
    assert!(
        png.windows(needle.len()).any(|w| w == needle),
        "the image's parameters name the pack"
    );

    // A second pack into the same folder is refused, with one message.
    assert_fails_with(
        &sow(&["pack", "--model", &model, "--out", pack.to_str().unwrap()]),
        "not empty",
    );
}
