//! The library with the real SDK clients: S3 served by moto, Bedrock by the
//! InvokeModel stand-in (both on 127.0.0.1).

use std::time::Duration;

use imagegen::{BedrockModel, ErrorKind, GenerateError, Generator, ImageStore, Prompt, S3Store};
use serde_json::Value;
use testkit::bedrock::FakeBedrock;

const MODEL: &str = "amazon.titan-image-generator-v1";

struct World {
    generator: Generator<BedrockModel, S3Store>,
    bedrock: FakeBedrock,
    s3: aws_sdk_s3::Client,
    bucket: String,
}

async fn world() -> World {
    let (s3, bucket) = testkit::bucket("images-").await;
    let bedrock = FakeBedrock::start(Duration::ZERO).await;
    let bconf = testkit::sdk_config(&bedrock.endpoint, "us-east-1");
    let model = BedrockModel::new(aws_sdk_bedrockruntime::Client::new(&bconf), MODEL);
    World {
        generator: Generator::new(model, S3Store::new(s3.clone(), bucket.clone()), "11"),
        bedrock,
        s3,
        bucket,
    }
}

#[tokio::test]
async fn generates_and_stores_the_png_byte_for_byte() {
    let w = world().await;
    let prompt = Prompt::parse("me at a Parisian café, polaroid filter").unwrap();
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
    assert_eq!(meta.get("model").map(String::as_str), Some(MODEL));
    assert_eq!(
        meta.get("prompt").map(String::as_str),
        Some("me%20at%20a%20Parisian%20caf%C3%A9%2C%20polaroid%20filter")
    );
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
    assert_eq!(side["model"], MODEL);

    // What the model received: the Titan request, with the model id of the config.
    let calls = w.bedrock.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, MODEL);
    assert_eq!(calls[0].1["taskType"], "TEXT_IMAGE");
    assert_eq!(
        calls[0].1["imageGenerationConfig"]["seed"].as_u64(),
        stored.seed.map(u64::from)
    );

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
    let w = world().await;
    let prompt = Prompt::parse("a beach").unwrap();
    let first = w.generator.generate_once("msg-1", &prompt).await.unwrap();
    let second = w.generator.generate_once("msg-1", &prompt).await.unwrap();
    assert!(!first.reused);
    assert!(second.reused);
    assert_eq!(first.key, second.key);
    assert_eq!(w.bedrock.call_count(), 1);
}

#[tokio::test]
async fn model_errors_are_classified() {
    let w = world().await;
    let err = |p: &str| {
        let g = &w.generator;
        let p = Prompt::parse(p).unwrap();
        async move { g.generate("x", &p).await.unwrap_err() }
    };
    let e = err("FILTER me").await;
    assert!(matches!(e, GenerateError::ContentFiltered(_)), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Refused);
    let e = err("THROTTLE me").await;
    assert_eq!(e.kind(), ErrorKind::Throttled, "{e:?}");
    let e = err("BROKEN model").await;
    assert_eq!(e.kind(), ErrorKind::Upstream, "{e:?}");
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
    let w = world().await;
    let conf = testkit::sdk_config(testkit::moto_endpoint(), "eu-west-1");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf)
            .force_path_style(true)
            .build(),
    );
    let bconf = testkit::sdk_config(&w.bedrock.endpoint, "us-east-1");
    let g = Generator::new(
        BedrockModel::new(aws_sdk_bedrockruntime::Client::new(&bconf), MODEL),
        S3Store::new(s3, "no-such-bucket-x"),
        "11",
    );
    let e = g
        .generate("x", &Prompt::parse("a").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, GenerateError::Storage(_)), "{e:?}");
}
