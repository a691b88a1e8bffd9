#!/usr/bin/env bash
# The same job as caption, the shell way: one ImageMagick convert and one curl per image, run
# `xargs -P` at a time. Usage: ls FOLDER/* | xargs -P N -n 1 bash imagemagick_caption.sh BASE_URL
set -euo pipefail
image=$(convert "$2" -auto-orient -resize '1806336@>' -quality 90 jpg:- | base64 -w0)
printf '{"model":"MiniCPM-V-4.6-Instruct","messages":[{"role":"user","content":[{"type":"text","text":"Describe this image."},{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,%s"}}]}],"max_tokens":512}' "$image" |
  curl -sS --fail -H 'content-type: application/json' --data-binary @- "$1/chat/completions" > /dev/null
