"""The same job as caption, written the way a user would without it: Pillow and a thread pool.

Usage: python3 pillow_caption.py BASE_URL FOLDER WORKERS OUT_CSV
"""
import base64
import csv
import io
import json
import os
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from PIL import Image, ImageOps

MAX_PIXELS = 1806336
base_url, folder, workers, out_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]


def caption(path):
    image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    width, height = image.size
    scale = min(1.0, (MAX_PIXELS / (width * height)) ** 0.5)
    if scale < 1:
        image = image.resize((int(width * scale), int(height * scale)), Image.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    data_url = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
    body = json.dumps({
        "model": "MiniCPM-V-4.6-Instruct",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Describe this image."},
            {"type": "image_url", "image_url": {"url": data_url}},
        ]}],
        "max_tokens": 512,
    }).encode()
    request = urllib.request.Request(
        base_url + "/chat/completions", data=body, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as reply:
        return path, json.load(reply)["choices"][0]["message"]["content"]


files = sorted(os.path.join(folder, name) for name in os.listdir(folder))
with ThreadPoolExecutor(workers) as pool:
    rows = list(pool.map(caption, files))
with open(out_path, "w", newline="") as out:
    csv.writer(out).writerows(rows)
