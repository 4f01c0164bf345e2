//! The Gemini planner against a real HTTP server on loopback that speaks Gemini's wire format
//! (`generateContent` requests and responses, Google's error bodies and status codes): the
//! happy path in both box conventions, one test per failure (each must fall back to the
//! offline plan with one clear message), the model list, and that the key shows up nowhere
//! but in its header.

#![cfg(not(target_arch = "wasm32"))]

#[path = "support/loopback.rs"]
mod loopback;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use loopback::{Loopback, Reply, Request, Response};
use serde_json::{json, Value};
use sow_studio::diffusion::sow::planner::{
    offline_plan, ApiKey, BoxConvention, ConditionImage, GeminiPlanner, GeminiSettings,
    GuidanceSuggestion, Plan, PlanRequest, PlanSource, Planner, PlannerError,
};
use sow_studio::imaging::geometry::{PixelRect, SquareBox};

/// A key that looks real and is easy to find in any text.
const KEY: &str = "AIzaSyT3st-Key_0123456789abcdefghijklm";
const MODEL: &str = "gemini-test-flash";
const FACE_PNG: &[u8] = b"\x89PNG\r\n\x1a\nface pixels";
const CAT_PNG: &[u8] = b"\x89PNG\r\n\x1a\ncat pixels";

fn request(conditions: &[&[u8]]) -> PlanRequest {
    PlanRequest::new(
        "a knight in a misty forest",
        conditions
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                ConditionImage::png(bytes.to_vec()).labelled(format!("part {}", i + 1))
            })
            .collect(),
    )
}

fn planner(endpoint: &str, boxes: BoxConvention) -> GeminiPlanner {
    GeminiPlanner::with_settings(
        ApiKey::new(KEY).unwrap(),
        GeminiSettings {
            model: MODEL.into(),
            endpoint: endpoint.into(),
            timeout_secs: 5,
            boxes,
        },
    )
}

fn body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).expect("the request body is JSON")
}

/// Which stage a `generateContent` request is, from the schema it asks for.
fn stage_of(request: &Request) -> u8 {
    let properties = &body(request)["generationConfig"]["responseSchema"]["properties"];
    match () {
        _ if properties.get("intensified_prompt").is_some() => 1,
        _ if properties.get("boxes").is_some() => 2,
        _ if properties.get("regions").is_some() => 3,
        _ => panic!("a request with an unknown schema: {properties}"),
    }
}

/// The instruction text of a request (its first part).
fn instruction(request: &Request) -> String {
    body(request)["contents"][0]["parts"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A 200 `generateContent` response whose answer text is `answer`.
fn answer(answer: &Value) -> Reply {
    Reply::Respond(Response::json(
        &json!({
            "candidates": [{
                "content": {"parts": [{"text": answer.to_string()}], "role": "model"},
                "finishReason": "STOP",
                "index": 0
            }],
            "usageMetadata": {"promptTokenCount": 1290, "candidatesTokenCount": 60, "totalTokenCount": 1350},
            "modelVersion": MODEL
        })
        .to_string(),
    ))
}

/// Google's error body with this status.
fn google_error(code: u16, status: &str, message: &str, details: Value) -> Response {
    Response::new(
        code,
        json!({"error": {"code": code, "message": message, "status": status, "details": details}})
            .to_string(),
    )
    .header("Content-Type", "application/json; charset=UTF-8")
}

fn face_answers(stage: u8) -> Value {
    match stage {
        1 => json!({
            "description": "young man, short dark hair, beard, calm expression",
            "intensified_prompt": "a young bearded man with short dark hair as a knight in shining armour in a misty forest",
            "human_face": true
        }),
        2 => {
            json!({"boxes": [{"condition": 1, "reason": "head high, body below", "box": {"x": 130, "y": 10, "w": 200, "h": 230}}]})
        }
        _ => {
            json!({"regions": [{"condition": 1, "related": [{"box": {"x": 60, "y": 190, "w": 400, "h": 400}}]}]})
        }
    }
}

/// Lets the handlers of stages 1 and 2 wait for each other: both are answered only if both
/// are in flight at once.
#[derive(Default)]
struct Rendezvous {
    arrived: Mutex<usize>,
    all_here: Condvar,
}

impl Rendezvous {
    /// Waits up to 5 s for the other stage; true if it came.
    fn meet(&self) -> bool {
        let mut arrived = self.arrived.lock().unwrap();
        *arrived += 1;
        self.all_here.notify_all();
        let (arrived, _) = self
            .all_here
            .wait_timeout_while(arrived, Duration::from_secs(5), |n| *n < 2)
            .unwrap();
        *arrived >= 2
    }
}

fn assert_key_hidden(texts: &[String]) {
    for text in texts {
        assert!(!text.contains(KEY), "the key leaked into: {text}");
        assert!(
            !text.contains("AIzaSyT3st"),
            "part of the key leaked into: {text}"
        );
    }
}

#[test]
fn happy_path_in_pixels_runs_stages_one_and_two_together_then_three() {
    let rendezvous = Arc::new(Rendezvous::default());
    let met = Arc::new(Mutex::new(Vec::new()));
    let server = {
        let (rendezvous, met) = (rendezvous.clone(), met.clone());
        Loopback::start(move |r| {
            let stage = stage_of(r);
            if stage < 3 {
                let together = rendezvous.meet();
                met.lock().unwrap().push(together);
            }
            answer(&face_answers(stage))
        })
    };
    let planner = planner(&server.url(), BoxConvention::Pixels);
    let request = request(&[FACE_PNG]);
    let plan = pollster::block_on(planner.plan(&request)).unwrap();

    assert_eq!(
        met.lock().unwrap().as_slice(),
        [true, true],
        "stages 1 and 2 were not in flight together"
    );
    assert_eq!(
        plan.source,
        PlanSource::Gemini {
            model: MODEL.into()
        }
    );
    assert_eq!(
        plan.prompt,
        "a young bearded man with short dark hair as a knight in shining armour in a misty forest"
    );
    assert_eq!(
        plan.description.as_deref(),
        Some("young man, short dark hair, beard, calm expression")
    );
    assert_eq!(
        plan.guidance, None,
        "a face keeps the preset's guidance prompts"
    );
    // 130,10,200×230 → side round(215) = 215 → 216; corner snapped to 128, 8.
    assert_eq!(plan.conditions[0].square, SquareBox::new(128, 8, 216));
    assert_eq!(
        plan.conditions[0].reason.as_deref(),
        Some("head high, body below")
    );
    assert_eq!(plan.conditions[0].label.as_deref(), Some("part 1"));
    // 60,190,400×400 clipped at the bottom edge.
    assert_eq!(
        plan.conditions[0].related,
        vec![PixelRect {
            x: 60,
            y: 190,
            w: 400,
            h: 322
        }]
    );
    assert!(plan.validate().is_ok());

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let stages: Vec<u8> = requests.iter().map(stage_of).collect();
    assert_eq!(
        stages[2], 3,
        "stage 3 must come after stages 1 and 2: {stages:?}"
    );
    for r in &requests {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path(), format!("/v1beta/models/{MODEL}:generateContent"));
        assert_eq!(r.header("x-goog-api-key"), Some(KEY));
        assert!(
            !r.target.contains(KEY) && !r.target.contains("key="),
            "{}",
            r.target
        );
        assert!(r
            .header("content-type")
            .unwrap()
            .starts_with("application/json"));
        let body = body(r);
        assert_eq!(
            body["generationConfig"]["responseMimeType"],
            "application/json"
        );
        assert_eq!(body["generationConfig"]["responseSchema"]["type"], "OBJECT");
        let parts = body["contents"][0]["parts"].as_array().unwrap();
        assert_eq!(parts[1]["text"], "Condition 1 (part 1):");
        assert_eq!(parts[2]["inline_data"]["mime_type"], "image/png");
        let image = STANDARD
            .decode(parts[2]["inline_data"]["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(image, FACE_PNG);
        assert!(instruction(r).contains("a knight in a misty forest"));
    }
    let position = requests.iter().find(|r| stage_of(r) == 2).unwrap();
    assert!(instruction(position).contains("between 180 and 256 pixels"));
    assert!(instruction(position).contains("512x512"));
    let refine = instruction(&requests[2]);
    assert!(
        refine.contains(r#"condition 1: "box": {"x": 128, "y": 8, "w": 216, "h": 216}"#),
        "{refine}"
    );
    assert!(
        refine.contains("shining armour"),
        "stage 3 sees P*: {refine}"
    );
}

#[test]
fn happy_path_in_box_2d_with_two_conditions_and_guidance() {
    let server = Loopback::start(|r| {
        answer(&match stage_of(r) {
            1 => json!({
                "description": "ginger cat's head and a red ball",
                "intensified_prompt": "a ginger cat playing with a red ball on a lawn",
                "human_face": false,
                "background_subject": "cat",
                "background_quality": "a sunny grassy lawn"
            }),
            // The conditions are answered out of order.
            2 => json!({"boxes": [
                {"condition": 2, "box_2d": [600, 700, 960, 960]},
                {"condition": 1, "box_2d": [0, 250, 500, 750]}
            ]}),
            _ => json!({"regions": [
                {"condition": 1, "related": [{"box_2d": [400, 100, 1000, 900]}]},
                {"condition": 2, "related": []}
            ]}),
        })
    });
    let planner = planner(&server.url(), BoxConvention::Box2d);
    let plan = pollster::block_on(planner.plan(&request(&[CAT_PNG, FACE_PNG]))).unwrap();
    assert_eq!(
        plan.source,
        PlanSource::Gemini {
            model: MODEL.into()
        }
    );
    assert_eq!(plan.conditions[0].square, SquareBox::new(128, 0, 256));
    // box_2d [600, 700, 960, 960] → x 358.4, y 307.2, w 133.1, h 184.3; w clamped to 180,
    // side round(182.2) = 182 → 184, corner snapped to 360, 304 and moved to fit: 328, 304.
    assert_eq!(plan.conditions[1].square, SquareBox::new(328, 304, 184));
    assert_eq!(
        plan.conditions[0].related,
        vec![PixelRect {
            x: 51,
            y: 204,
            w: 410,
            h: 308
        }]
    );
    assert!(plan.conditions[1].related.is_empty());
    assert_eq!(
        plan.guidance,
        Some(GuidanceSuggestion {
            background_subject: "cat".into(),
            background_quality: "a sunny grassy lawn".into()
        })
    );
    let requests = server.requests();
    let schema = &body(&requests[0])["generationConfig"]["responseSchema"];
    let position = requests.iter().find(|r| stage_of(r) == 2).unwrap();
    assert!(
        body(position)["generationConfig"]["responseSchema"]["properties"]["boxes"]["items"]
            ["properties"]
            .get("box_2d")
            .is_some()
    );
    assert!(schema.is_object());
    let refine = requests.iter().find(|r| stage_of(r) == 3).unwrap();
    assert!(
        instruction(refine).contains(r#"condition 2: "box_2d": [594, 641, 953, 1000]"#),
        "{}",
        instruction(refine)
    );
    let parts = body(refine)["contents"][0]["parts"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(parts.len(), 5, "instruction + two captions + two images");
    assert_eq!(
        STANDARD
            .decode(parts[4]["inline_data"]["data"].as_str().unwrap())
            .unwrap(),
        FACE_PNG
    );
}

/// Plans against a server answering with `reply`, expects the offline plan with a fallback
/// reason containing every phrase of `expected`, and returns the error and the requests.
fn expect_fallback(
    reply: impl Fn(u8, &Request) -> Reply + Send + Sync + 'static,
    conditions: &[&[u8]],
    expected: &[&str],
) -> (PlannerError, Vec<Request>) {
    let server = Loopback::start(move |r| reply(stage_of(r), r));
    let planner = planner(&server.url(), BoxConvention::Pixels);
    expect_fallback_from(&planner, conditions, expected, &server)
}

fn expect_fallback_from(
    planner: &GeminiPlanner,
    conditions: &[&[u8]],
    expected: &[&str],
    server: &Loopback,
) -> (PlannerError, Vec<Request>) {
    let request = request(conditions);
    let plan = pollster::block_on(planner.plan(&request)).unwrap();
    let PlanSource::Fallback { model, reason } = &plan.source else {
        panic!("expected a fallback, got {:?}", plan.source);
    };
    assert_eq!(model, MODEL);
    for phrase in expected {
        assert!(reason.contains(phrase), "{reason:?} lacks {phrase:?}");
    }
    assert_eq!(
        Plan {
            source: PlanSource::Offline,
            ..plan.clone()
        },
        offline_plan(&request),
        "the fallback must be the offline plan"
    );
    let notice = plan.notice().expect("a fallback has a notice");
    assert!(
        notice.contains("offline plan") && notice.contains(reason.as_str()),
        "{notice}"
    );
    let requests = server.requests();
    server.clear_log();
    let error = pollster::block_on(planner.try_plan(&request)).unwrap_err();
    assert_eq!(
        error.to_string(),
        *reason,
        "plan and try_plan report the same failure"
    );
    assert_key_hidden(&[
        plan.to_json(),
        format!("{plan:?}"),
        notice,
        error.to_string(),
        format!("{error:?}"),
        format!("{planner:?}"),
    ]);
    (error, requests)
}

fn all_ok(stage: u8) -> Reply {
    answer(&face_answers(stage))
}

#[test]
fn connection_refused_falls_back() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let server = Loopback::start(|_| Reply::Close); // only for the request log
    let planner = planner(&format!("http://127.0.0.1:{port}"), BoxConvention::Pixels);
    let (error, _) = expect_fallback_from(
        &planner,
        &[FACE_PNG],
        &["could not be reached", "network"],
        &server,
    );
    assert!(
        matches!(error, PlannerError::Unreachable { .. }),
        "{error:?}"
    );
}

#[test]
fn a_dropped_connection_falls_back() {
    let (error, _) = expect_fallback(|_, _| Reply::Close, &[FACE_PNG], &["Gemini"]);
    assert!(
        matches!(
            error,
            PlannerError::Transfer { .. } | PlannerError::Unreachable { .. }
        ),
        "{error:?}"
    );
}

#[test]
fn an_invalid_key_falls_back() {
    let (error, _) = expect_fallback(
        |_, _| {
            Reply::Respond(google_error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                json!([{
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"}
                }]),
            ))
        },
        &[FACE_PNG],
        &[
            "rejected the API key",
            "HTTP 400",
            "API key not valid",
            "GEMINI_API_KEY",
        ],
    );
    assert!(matches!(
        error,
        PlannerError::KeyRejected { status: 400, .. }
    ));
}

#[test]
fn unauthenticated_falls_back() {
    let (error, _) = expect_fallback(
        |_, _| {
            Reply::Respond(google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials.",
                json!([]),
            ))
        },
        &[FACE_PNG],
        &["rejected the API key", "HTTP 401", "UNAUTHENTICATED"],
    );
    assert!(matches!(
        error,
        PlannerError::KeyRejected { status: 401, .. }
    ));
}

#[test]
fn forbidden_falls_back_and_the_echoed_key_is_redacted() {
    let (error, _) = expect_fallback(
        |_, _| {
            Reply::Respond(google_error(
                403,
                "PERMISSION_DENIED",
                &format!("Permission denied: Consumer 'api_key:{KEY}' has been suspended."),
                json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "CONSUMER_SUSPENDED"}]),
            ))
        },
        &[FACE_PNG],
        &[
            "rejected the API key",
            "HTTP 403",
            "api_key:<redacted>",
            "suspended",
        ],
    );
    assert!(matches!(
        error,
        PlannerError::KeyRejected { status: 403, .. }
    ));
}

#[test]
fn rate_limits_fall_back_with_the_wait() {
    let quota = || {
        google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
            json!([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "21s"}]),
        )
    };
    let (error, _) = expect_fallback(
        move |_, _| Reply::Respond(quota().header("Retry-After", "37")),
        &[FACE_PNG],
        &["rate limit or quota", "HTTP 429", "try again in 37 s"],
    );
    assert!(matches!(error, PlannerError::RateLimited { .. }));
    expect_fallback(
        move |_, _| Reply::Respond(quota()),
        &[FACE_PNG],
        &["try again in 21 s"],
    );
}

#[test]
fn server_errors_fall_back() {
    expect_fallback(
        |_, _| {
            Reply::Respond(google_error(
                500,
                "INTERNAL",
                "An internal error has occurred.",
                json!([]),
            ))
        },
        &[FACE_PNG],
        &["server error", "HTTP 500", "try again later"],
    );
    let (error, _) = expect_fallback(
        |stage, _| match stage {
            2 => Reply::Respond(google_error(
                503,
                "UNAVAILABLE",
                "The model is overloaded. Please try again later.",
                json!([]),
            )),
            _ => all_ok(stage),
        },
        &[FACE_PNG],
        &["HTTP 503", "overloaded"],
    );
    assert!(matches!(error, PlannerError::Server { status: 503, .. }));
    // A proxy's HTML error page is quoted, briefly, as it is.
    expect_fallback(
        |_, _| Reply::Respond(Response::new(502, "<html><body>Bad gateway</body></html>")),
        &[FACE_PNG],
        &["HTTP 502", "Bad gateway"],
    );
}

#[test]
fn an_unknown_model_falls_back() {
    let (error, _) = expect_fallback(
        |_, _| {
            Reply::Respond(google_error(
                404,
                "NOT_FOUND",
                &format!("models/{MODEL} is not found for API version v1beta, or is not supported for generateContent."),
                json!([]),
            ))
        },
        &[FACE_PNG],
        &["refused the request", "HTTP 404", "check the model name"],
    );
    assert!(matches!(error, PlannerError::Refused { status: 404, .. }));
}

#[test]
fn a_model_name_that_is_not_one_falls_back_without_a_request() {
    let server = Loopback::start(|r| all_ok(stage_of(r)));
    let mut settings = planner(&server.url(), BoxConvention::Pixels)
        .settings()
        .clone();
    settings.model = "gemini 2.5/flash".into();
    let planner = GeminiPlanner::with_settings(ApiKey::new(KEY).unwrap(), settings);
    let request = request(&[FACE_PNG]);
    let plan = pollster::block_on(planner.plan(&request)).unwrap();
    let PlanSource::Fallback { reason, .. } = &plan.source else {
        panic!("{:?}", plan.source)
    };
    assert!(reason.contains("is not a Gemini model name"), "{reason}");
    assert!(server.requests().is_empty());
}

#[test]
fn a_timeout_falls_back() {
    let server = Loopback::start(|_| Reply::Hang(Duration::from_secs(3)));
    let mut settings = planner(&server.url(), BoxConvention::Pixels)
        .settings()
        .clone();
    settings.timeout_secs = 1;
    let planner = GeminiPlanner::with_settings(ApiKey::new(KEY).unwrap(), settings);
    let started = std::time::Instant::now();
    let (error, _) = expect_fallback_from(
        &planner,
        &[FACE_PNG],
        &["did not answer", "within 1 s"],
        &server,
    );
    assert!(matches!(error, PlannerError::Timeout { .. }), "{error:?}");
    // Two plans (plan and try_plan), each waiting once for stages 1 and 2 side by side.
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_blocked_prompt_falls_back_without_stage_three() {
    let (error, requests) = expect_fallback(
        |stage, _| {
            match stage {
            1 => Reply::Respond(Response::json(
                &json!({
                    "promptFeedback": {
                        "blockReason": "SAFETY",
                        "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]
                    },
                    "usageMetadata": {"promptTokenCount": 1290, "totalTokenCount": 1290}
                })
                .to_string(),
            )),
            _ => all_ok(stage),
        }
        },
        &[FACE_PNG],
        &["blocked stage 1 (prompt intensification)", "SAFETY"],
    );
    assert!(matches!(error, PlannerError::Blocked { .. }));
    assert_eq!(requests.len(), 2, "no stage 3 after a failed stage 1");
}

#[test]
fn answers_stopped_without_text_fall_back() {
    for reason in ["SAFETY", "PROHIBITED_CONTENT", "OTHER"] {
        let (error, _) = expect_fallback(
            move |stage, _| {
                match stage {
                2 => Reply::Respond(Response::json(
                    &json!({"candidates": [{"finishReason": reason, "index": 0,
                        "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "MEDIUM"}]}]})
                    .to_string(),
                )),
                _ => all_ok(stage),
            }
            },
            &[FACE_PNG],
            &[
                "stage 2 (condition position)",
                &format!("stopped with {reason}"),
            ],
        );
        assert!(matches!(error, PlannerError::NoText { .. }));
    }
}

#[test]
fn empty_answers_fall_back() {
    for empty in [
        json!({"candidates": []}),
        json!({}),
        json!({"candidates": [{"content": {"parts": []}, "finishReason": "STOP"}]}),
    ] {
        let (error, _) = expect_fallback(
            move |stage, _| match stage {
                1 => Reply::Respond(Response::json(&empty.to_string())),
                _ => all_ok(stage),
            },
            &[FACE_PNG],
            &["returned no answer to stage 1"],
        );
        assert!(matches!(error, PlannerError::Empty { .. }));
    }
}

#[test]
fn malformed_json_falls_back() {
    // Prose instead of JSON.
    expect_fallback(
        |stage, _| {
            match stage {
            2 => Reply::Respond(Response::json(
                &json!({"candidates": [{"content": {"parts": [{"text": "Sure! Put it at [128, 0, 256, 256]."}]}, "finishReason": "STOP"}]})
                    .to_string(),
            )),
            _ => all_ok(stage),
        }
        },
        &[FACE_PNG],
        &["answer to stage 2 (condition position) is not the JSON asked for"],
    );
    // An answer cut off by the token limit names the cause.
    expect_fallback(
        |stage, _| {
            match stage {
            3 => Reply::Respond(Response::json(
                &json!({"candidates": [{"content": {"parts": [{"text": "{\"regions\": [{\"condition\": 1, "}]}, "finishReason": "MAX_TOKENS"}]})
                    .to_string(),
            )),
            _ => all_ok(stage),
        }
        },
        &[FACE_PNG],
        &[
            "stage 3 (related region) is not the JSON asked for",
            "ended with MAX_TOKENS",
        ],
    );
    // Not Gemini's envelope at all.
    expect_fallback(
        |_, _| Reply::Respond(Response::new(200, "<html>captive portal</html>")),
        &[FACE_PNG],
        &["not Gemini's JSON"],
    );
    // JSON of the wrong shape, and an empty prompt.
    expect_fallback(
        |stage, _| match stage {
            1 => answer(&json!({"prompt": "a knight"})),
            _ => all_ok(stage),
        },
        &[FACE_PNG],
        &["stage 1", "missing field `description`"],
    );
    expect_fallback(
        |stage, _| match stage {
            1 => {
                answer(&json!({"description": "x", "intensified_prompt": "  ", "human_face": true}))
            }
            _ => all_ok(stage),
        },
        &[FACE_PNG],
        &["the intensified prompt is empty"],
    );
}

#[test]
fn missing_and_out_of_range_boxes_fall_back() {
    let cases: [(Value, &[u8], &[&str]); 5] = [
        (
            json!({"boxes": [{"condition": 1, "box": {"x": 900, "y": 0, "w": 256, "h": 256}}]}),
            FACE_PNG,
            &[
                "unusable box for condition 1",
                "x=900, y=0, w=256, h=256 is out of range",
                "off the canvas",
            ],
        ),
        (
            json!({"boxes": [{"condition": 1, "bbox": [128, 0, 256, 256]}]}),
            FACE_PNG,
            &["unusable box for condition 1", "no box"],
        ),
        (
            json!({"boxes": [{"condition": 1, "box": {"x": 128, "y": 0, "w": 256}}]}),
            FACE_PNG,
            &["no \"h\""],
        ),
        (
            json!({"boxes": [{"condition": 1, "box": {"x": 128, "y": 0, "w": 256, "h": 256}}]}),
            CAT_PNG,
            &["has nothing for condition 2"],
        ),
        (
            json!({"boxes": [{"condition": 3, "box": {"x": 128, "y": 0, "w": 256, "h": 256}}]}),
            FACE_PNG,
            &["there is no condition 3"],
        ),
    ];
    for (position, second, expected) in cases {
        let conditions: Vec<&[u8]> = match second == CAT_PNG {
            true => vec![FACE_PNG, CAT_PNG],
            false => vec![FACE_PNG],
        };
        expect_fallback(
            move |stage, _| match stage {
                2 => answer(&position),
                _ => all_ok(stage),
            },
            &conditions,
            expected,
        );
    }
    let (error, _) = expect_fallback(
        |stage, _| match stage {
            3 => answer(
                &json!({"regions": [{"condition": 1, "related": [{"box_2d": [0, 0, 1200, 500]}]}]}),
            ),
            _ => all_ok(stage),
        },
        &[FACE_PNG],
        &[
            "stage 3 (related region)",
            "unusable box for condition 1",
            "box_2d [0, 0, 1200, 500]",
            "0..1000",
        ],
    );
    assert!(matches!(error, PlannerError::BadBox { condition: 1, .. }));
}

#[test]
fn the_model_list_keeps_generate_content_models_across_pages() {
    let server = Loopback::start(|r| {
        let page = match r.target.contains("pageToken=next%2Fpage%3D%3D") {
            false => json!({
                "models": [
                    {"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash",
                     "description": "Fast and versatile", "supportedGenerationMethods": ["generateContent", "countTokens"]},
                    {"name": "models/text-embedding-004", "displayName": "Text Embedding 004",
                     "supportedGenerationMethods": ["embedContent"]}
                ],
                "nextPageToken": "next/page=="
            }),
            true => json!({"models": [
                {"name": "models/gemini-2.5-pro", "displayName": "Gemini 2.5 Pro",
                 "supportedGenerationMethods": ["generateContent"]}
            ]}),
        };
        Reply::Respond(Response::json(&page.to_string()))
    });
    let planner = planner(&server.url(), BoxConvention::Pixels);
    let models = pollster::block_on(planner.list_models()).unwrap();
    let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["gemini-2.5-flash", "gemini-2.5-pro"]);
    assert_eq!(models[0].display_name, "Gemini 2.5 Flash");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!((r.method.as_str(), r.path()), ("GET", "/v1beta/models"));
        assert_eq!(r.header("x-goog-api-key"), Some(KEY));
        assert!(!r.target.contains(KEY));
    }
}

#[test]
fn the_model_list_reports_a_rejected_key() {
    let server = Loopback::start(|_| {
        Reply::Respond(google_error(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]),
        ))
    });
    let error = pollster::block_on(planner(&server.url(), BoxConvention::Pixels).list_models())
        .unwrap_err();
    assert!(
        matches!(error, PlannerError::KeyRejected { status: 400, .. }),
        "{error:?}"
    );
    assert_key_hidden(&[error.to_string(), format!("{error:?}")]);
}

#[test]
fn every_plan_in_the_documentation_parses() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/planner.md")).unwrap();
    let blocks: Vec<&str> = doc
        .split("```json plan\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect();
    assert!(
        blocks.len() >= 2,
        "docs/planner.md should show plans in ```json plan blocks"
    );
    for block in blocks {
        let plan = Plan::from_json(block).unwrap_or_else(|e| panic!("{e}\n{block}"));
        assert_eq!(Plan::from_json(&plan.to_json()).unwrap(), plan);
    }
}
