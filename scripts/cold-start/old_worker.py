"""Shaped like the Python worker this project replaces, for the cold-start
comparison (scripts/bench-cold-start): the same imports and the three boto3
clients created at import time. Run under awslambdaric."""

import base64
import json
import os
import random

import boto3

bedrock = boto3.client("bedrock-runtime", region_name="us-east-1")
s3 = boto3.client("s3")
sqs = boto3.client("sqs")

BUCKET = os.environ.get("IMAGE_BUCKET", "")


def handler(event, context):
    for record in event.get("Records", []):
        prompt = record["body"]
        body = json.dumps(
            {
                "taskType": "TEXT_IMAGE",
                "textToImageParams": {"text": prompt},
                "imageGenerationConfig": {"seed": random.randint(0, 2**31 - 1)},
            }
        )
        answer = json.loads(bedrock.invoke_model(modelId="amazon.titan-image-generator-v1", body=body)["body"].read())
        image = base64.b64decode(answer["images"][0])
        s3.put_object(Bucket=BUCKET, Key=f"images/{record['messageId']}.png", Body=image)
    return {"batchItemFailures": []}
