"""The measuring half of scripts/bench-capacity: sends a burst of prompts to
the deployed stack's queue in the emulator, waits until each is a picture
in S3 (or in the dead-letter queue), and prints the figures issue 30 asks
for. Talks only to 127.0.0.1 (AWS_ENDPOINT_URL, the model stand-in)."""

import argparse
import json
import re
import sys
import time
import urllib.request

import boto3


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--outputs", required=True)
    p.add_argument("--model", required=True, help="the stand-in's endpoint")
    p.add_argument("--prompts", type=int, default=100)
    p.add_argument("--model-calls", type=int, default=4)
    p.add_argument("--latency-ms", type=int, default=1000)
    p.add_argument("--worker-log", required=True)
    p.add_argument("--timeout", type=float, default=900)
    a = p.parse_args()
    out = json.load(open(a.outputs))
    sqs = boto3.client("sqs", region_name="eu-west-1")
    s3 = boto3.client("s3", region_name="eu-west-1")
    queue, dlq = out["queue_url"], out["dlq_url"]
    bucket, prefix = out["images_bucket"], out["images_prefix"].strip("/")
    before = json.load(urllib.request.urlopen(a.model + "/_standin/stats"))

    sent = {}
    started = time.monotonic()
    for n in range(0, a.prompts, 10):
        entries = [
            {"Id": str(i), "MessageBody": f"bench prompt {n + i}: a couch on the moon"}
            for i in range(min(10, a.prompts - n))
        ]
        r = sqs.send_message_batch(QueueUrl=queue, Entries=entries)
        if r.get("Failed"):
            print(f"send failed: {r['Failed']}", file=sys.stderr)
            return 1
        for ok in r["Successful"]:
            sent[ok["MessageId"]] = time.monotonic()

    done = {}
    pattern = re.compile(rf"^{re.escape(prefix)}/images/([0-9a-f-]{{36}})\.png$")
    dead = 0
    while len(done) + dead < len(sent):
        if time.monotonic() - started > a.timeout:
            print(f"not drained after {a.timeout:.0f} s: {len(done)} images", file=sys.stderr)
            return 1
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{prefix}/images/"
        )
        now = time.monotonic()
        for page in pages:
            for o in page.get("Contents", []):
                m = pattern.match(o["Key"])
                if m and m.group(1) in sent and m.group(1) not in done:
                    done[m.group(1)] = now
        attrs = sqs.get_queue_attributes(
            QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        dead = int(attrs["ApproximateNumberOfMessages"])
        time.sleep(0.25)
    drain = max(done.values(), default=started) - started
    if not done:
        print(f"no picture made: {dead} prompts dead-lettered", file=sys.stderr)
        return 1
    after = json.load(urllib.request.urlopen(a.model + "/_standin/stats"))
    throttled = after["throttled"] - before["throttled"]
    # What the stack lets the worker use: its pollers x calls each, from
    # the local run's first lines ("N at a time, M model call(s) each").
    log = open(a.worker_log).read()
    m = re.search(r"(\d+) at a time, (\d+) model call\(s\) each", log)
    share = min(int(m.group(1)) * int(m.group(2)), a.model_calls) if m else a.model_calls
    ideal = len(sent) * a.latency_ms / 1000 / share
    lat = sorted(done[i] - sent[i] for i in done)

    def q(x: float) -> float:
        return lat[max(0, min(len(lat) - 1, int(len(lat) * x + 0.999) - 1))] if lat else 0.0

    print(
        f"burst of {len(sent)} at {a.model_calls} calls x {a.latency_ms} ms "
        f"(the worker's share {share}): {len(done)} images, {dead} dead-lettered, "
        f"{throttled} throttled calls ({throttled / max(1, len(done)):.2f} per image); "
        f"drained in {drain:.1f} s vs ideal {ideal:.1f} s: throughput {ideal / drain:.2f} of the share "
        f"({ideal / drain * share / a.model_calls:.2f} of the model's capacity); "
        f"prompt-to-picture p50 {q(0.5):.1f} s, p99 {q(0.99):.1f} s"
    )
    return 0 if len(done) == len(sent) and dead == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
