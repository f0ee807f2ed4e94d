//! The library with the real SDK clients: S3 served by moto, Bedrock by the
//! InvokeModel stand-in (both on 127.0.0.1), for each model family.

use std::time::Duration;

use imagegen::{
    BedrockModel, ErrorKind, GenerateError, Generator, ImageModel, ImageStore, Prompt, PromptRule,
    S3Store,
};
use serde_json::Value;
use testkit::bedrock::FakeBedrock;

/// Amazon's TEXT_IMAGE family (Titan; Nova Canvas shares its shape).
const TITAN: &str = "amazon.titan-image-generator-v1";
/// Stability AI's family, the default model.
const STABILITY: &str = "stability.stable-image-core-v1:1";
/// One model per family, and a cross-Region profile id.
const MODELS: [&str; 4] = [
    TITAN,
    "amazon.nova-canvas-v1:0",
    STABILITY,
    "us.stability.sd3-5-large-v1:0",
];

fn parse(p: &str) -> Prompt {
    Prompt::parse(p, PromptRule::TITAN).unwrap()
}

struct World {
    generator: Generator<BedrockModel, S3Store>,
    bedrock: FakeBedrock,
    s3: aws_sdk_s3::Client,
    bucket: String,
}

async fn world(model_id: &str) -> World {
    let (s3, bucket) = testkit::bucket("images-").await;
    let bedrock = FakeBedrock::start(Duration::ZERO).await;
    let bconf = testkit::sdk_config(&bedrock.endpoint, "us-west-2");
    let model = BedrockModel::new(aws_sdk_bedrockruntime::Client::new(&bconf), model_id).unwrap();
    World {
        generator: Generator::new(model, S3Store::new(s3.clone(), bucket.clone()), "11"),
        bedrock,
        s3,
        bucket,
    }
}

#[tokio::test]
async fn every_family_generates_and_stores_the_png_byte_for_byte() {
    for model in MODELS {
        generates_and_stores(model).await;
    }
}

async fn generates_and_stores(model: &str) {
    let w = world(model).await;
    let prompt = parse("me at a Parisian café, polaroid filter");
    let stored = w.generator.generate("req-1", &prompt).await.unwrap();
    assert_eq!(stored.key, "11/images/req-1.png");
    assert_eq!(
        stored.s3_uri(),
        format!("s3://{}/11/images/req-1.png", w.bucket)
    );
    assert!(!stored.reused);

    let obj =
        w.s3.get_object()
            .bucket(&w.bucket)
            .key(&stored.key)
            .send()
            .await
            .unwrap();
    assert_eq!(obj.content_type(), Some("image/png"));
    let meta = obj.metadata().cloned().unwrap_or_default();
    assert_eq!(
        meta.get("seed").map(String::as_str),
        Some(stored.seed.unwrap().to_string().as_str())
    );
    assert_eq!(meta.get("model").map(String::as_str), Some(model));
    // No `x-amz-meta-prompt`: whoever may read the picture does not read the prompt.
    assert_eq!(meta.len(), 2, "{meta:?}");
    assert_eq!(meta.get("prompt"), None);
    let bytes = obj.body.collect().await.unwrap().into_bytes();
    // Byte for byte what the model answered: a PNG painted for this prompt and seed.
    assert_eq!(Some(bytes.to_vec()), w.bedrock.last_picture());
    assert!(bytes.starts_with(b"\x89PNG"));

    let side =
        w.s3.get_object()
            .bucket(&w.bucket)
            .key("11/images/req-1.json")
            .send()
            .await
            .unwrap();
    let side: Value =
        serde_json::from_slice(&side.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(side["prompt"], "me at a Parisian café, polaroid filter");
    assert_eq!(side["model"], model);

    // What the model received: its family's request, with the configured model id.
    let calls = w.bedrock.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, model);
    let seed = if model.starts_with("amazon.") {
        assert_eq!(calls[0].1["taskType"], "TEXT_IMAGE", "{model}");
        &calls[0].1["imageGenerationConfig"]["seed"]
    } else {
        assert_eq!(
            calls[0].1["prompt"],
            "me at a Parisian café, polaroid filter"
        );
        assert_eq!(calls[0].1["output_format"], "png");
        assert_eq!(calls[0].1["aspect_ratio"], "1:1");
        &calls[0].1["seed"]
    };
    assert_eq!(seed.as_u64(), stored.seed.map(u64::from), "{model}");

    let url = w
        .generator
        .store
        .presigned_url(&stored.key, Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(
        url.contains("X-Amz-Expires=3600") && url.contains("req-1.png"),
        "{url}"
    );
}

#[tokio::test]
async fn an_existing_image_is_not_generated_again() {
    let w = world(STABILITY).await;
    let prompt = parse("a beach");
    let first = w.generator.generate_once("msg-1", &prompt).await.unwrap();
    let second = w.generator.generate_once("msg-1", &prompt).await.unwrap();
    assert!(!first.reused);
    assert!(second.reused);
    assert_eq!(first.key, second.key);
    assert_eq!(w.bedrock.call_count(), 1);
}

/// The synchronous route's write against S3's conditional writes (moto):
/// `If-None-Match: *` refuses a key that holds a picture (412), the picture
/// is not overwritten, and the next key is taken instead.
#[tokio::test]
async fn a_new_picture_never_overwrites_and_a_taken_key_is_retried_once() {
    let w = world(STABILITY).await;
    let held = w.generator.sync_key_for("held");
    let first = w
        .generator
        .generate_new(&parse("the first asker's trip"), || held.clone())
        .await
        .unwrap();
    assert_eq!(first.key, "11/images/sync/held.png");
    let picture = |key: String| {
        let s3 = w.s3.clone();
        let bucket = w.bucket.clone();
        async move {
            let o = s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .unwrap();
            let meta = o.metadata().cloned().unwrap_or_default();
            (o.body.collect().await.unwrap().into_bytes().to_vec(), meta)
        }
    };
    let (bytes, meta) = picture(held.clone()).await;
    assert_eq!(meta.get("prompt"), None, "{meta:?}");

    let mut keys = vec![held.clone(), w.generator.sync_key_for("fresh")].into_iter();
    let second = w
        .generator
        .generate_new(&parse("the second asker's trip"), || keys.next().unwrap())
        .await
        .unwrap();
    assert_eq!(second.key, "11/images/sync/fresh.png");
    assert_eq!(picture(held.clone()).await.0, bytes, "not overwritten");
    let side =
        w.s3.get_object()
            .bucket(&w.bucket)
            .key("11/images/sync/held.json")
            .send()
            .await
            .unwrap();
    let side: Value =
        serde_json::from_slice(&side.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(side["prompt"], "the first asker's trip");

    // Two taken keys: an error, and still nothing overwritten.
    let e = w
        .generator
        .generate_new(&parse("a third trip"), || held.clone())
        .await
        .unwrap_err();
    assert!(matches!(e, GenerateError::Storage(_)), "{e:?}");
    assert_eq!(picture(held).await.0, bytes);
    assert_eq!(
        w.bedrock.call_count(),
        3,
        "one model call per picture asked"
    );
}

#[tokio::test]
async fn every_familys_refusals_and_failures_are_classified() {
    for model in MODELS {
        classified(model).await;
    }
}

/// Each family's own wire form (Amazon: a 400 ValidationException or a 200
/// `error`; Stability: 200 with `finish_reasons`) classified the same way.
async fn classified(model: &str) {
    let w = world(model).await;
    let err = |p: &str| {
        let g = &w.generator;
        let p = parse(p);
        async move { g.generate("x", &p).await.unwrap_err() }
    };
    for refused in ["FILTER me", "FILTER_OUTPUT me"] {
        let e = err(refused).await;
        assert!(
            matches!(e, GenerateError::ContentFiltered(_)),
            "{model} {refused}: {e:?}"
        );
        assert_eq!(e.kind(), ErrorKind::Refused);
    }
    let e = err("THROTTLE me").await;
    assert_eq!(e.kind(), ErrorKind::Throttled, "{model}: {e:?}");
    let e = err("BROKEN model").await;
    assert_eq!(e.kind(), ErrorKind::Upstream, "{model}: {e:?}");
    assert!(e.retryable());
    // Nothing was stored for failed generations.
    let listed =
        w.s3.list_objects_v2()
            .bucket(&w.bucket)
            .send()
            .await
            .unwrap();
    assert_eq!(listed.key_count(), Some(0));
}

#[tokio::test]
async fn a_missing_bucket_is_a_storage_error() {
    let w = world(STABILITY).await;
    let conf = testkit::sdk_config(testkit::moto_endpoint(), "eu-west-1");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(true)
            .build(),
    );
    let bconf = testkit::sdk_config(&w.bedrock.endpoint, "us-west-2");
    let g = Generator::new(
        BedrockModel::new(aws_sdk_bedrockruntime::Client::new(&bconf), STABILITY).unwrap(),
        S3Store::new(s3, "no-such-bucket-x"),
        "11",
    );
    let e = g.generate("x", &parse("a")).await.unwrap_err();
    assert!(matches!(e, GenerateError::Storage(_)), "{e:?}");
}

#[test]
fn a_model_id_chooses_its_family_and_prompt_rule() {
    let conf = testkit::sdk_config("http://127.0.0.1:9", "us-west-2");
    let client = aws_sdk_bedrockruntime::Client::new(&conf);
    let rule = |id| {
        BedrockModel::new(client.clone(), id)
            .map(|m| m.prompt_rule())
            .ok()
    };
    assert_eq!(rule(TITAN), Some(PromptRule::TITAN));
    assert_eq!(
        rule("amazon.nova-canvas-v1:0"),
        Some(PromptRule::NOVA_CANVAS)
    );
    assert_eq!(rule(STABILITY), Some(PromptRule::STABILITY));
    assert!(BedrockModel::new(client, "meta.llama3-8b-instruct-v1:0").is_err());
}

/// Signed with a session that ends in ten minutes, a link asked for an hour
/// says it lasts at most what the session has left (less a minute of skew):
/// S3 would end it with the session anyway.
#[tokio::test]
async fn a_presigned_link_ends_no_later_than_the_session_that_signed_it() {
    use aws_sdk_s3::config::Credentials;
    let (s3, bucket) = testkit::bucket("images-").await;
    let ends = std::time::SystemTime::now() + Duration::from_secs(600);
    let session = aws_sdk_s3::config::SharedCredentialsProvider::new(Credentials::new(
        "testing",
        "testing",
        Some("session-token".into()),
        Some(ends),
        "a role session",
    ));
    let client = aws_sdk_s3::Client::from_conf(
        s3.config()
            .to_builder()
            .credentials_provider(session.clone())
            .build(),
    );
    let url = S3Store::new(client, bucket)
        .signed_by(Some(session))
        .presigned_url("11/images/x.png", Duration::from_secs(3600))
        .await
        .unwrap();
    let expires: u64 = url
        .split("X-Amz-Expires=")
        .nth(1)
        .and_then(|v| v.split('&').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no X-Amz-Expires in {url}"));
    assert!((530..=540).contains(&expires), "{expires} s: {url}");
    // Long-term credentials keep the hour.
    let url = S3Store::new(s3, "b")
        .presigned_url("11/images/x.png", Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(url.contains("X-Amz-Expires=3600"), "{url}");
}
