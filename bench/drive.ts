/**
 * A closed loop of caption requests that keeps as many in flight as a controller allows, for
 * racing controllers on the fake's batching servers. The requests are real HTTP to the fake, with
 * a tiny image, so what is measured is the controller and the server, not image preparation.
 */
import http from "node:http";
import type { Controller } from "./controllers.js";

export interface Drive {
  /** Answers back within the run's time. */
  answers: number;
  /** Answers in the second half of the run, when every controller has had time to settle. */
  lateAnswers: number;
  /** Latency of each answer in the second half, in ms. */
  lateLatencies: number[];
  /** The figure allowed at the end, and the highest it reached. */
  finalLimit: number;
  highestLimit: number;
}

/** A 1×1 JPEG: the fake is told not to decode it. */
const PIXEL =
  "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AKp//2Q==";

export async function drive(
  baseUrl: string,
  controller: Controller,
  seconds: number,
): Promise<Drive> {
  const url = new URL(`${baseUrl}/chat/completions`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  const body = JSON.stringify({
    model: "MiniCPM-V-4.6-Instruct",
    messages: [
      {
        role: "user",
        content: [
          { type: "text", text: "Describe this image." },
          { type: "image_url", image_url: { url: `data:image/jpeg;base64,${PIXEL}` } },
        ],
      },
    ],
  });
  const started = performance.now();
  const end = started + seconds * 1000;
  const half = started + (seconds * 1000) / 2;
  const result: Drive = {
    answers: 0,
    lateAnswers: 0,
    lateLatencies: [],
    finalLimit: controller.limit,
    highestLimit: controller.limit,
  };
  let inFlight = 0;
  const requests = new Set<http.ClientRequest>();
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });

  const settle = (sentAt: number, ok: boolean): void => {
    const now = performance.now();
    inFlight -= 1;
    if (now <= end) {
      if (ok) {
        result.answers += 1;
        controller.answered(now - sentAt, now);
        if (now >= half) {
          result.lateAnswers += 1;
          result.lateLatencies.push(now - sentAt);
        }
      } else {
        controller.congested(now);
      }
    }
    controller.inFlight(inFlight, now);
    result.highestLimit = Math.max(result.highestLimit, controller.limit);
    fill();
  };

  const send = (): void => {
    const sentAt = performance.now();
    inFlight += 1;
    controller.inFlight(inFlight, sentAt);
    const request = http.request(
      url,
      { method: "POST", agent, headers: { "content-type": "application/json" } },
      (response) => {
        response.resume();
        response.once("end", () => {
          requests.delete(request);
          settle(sentAt, response.statusCode === 200);
        });
      },
    );
    request.once("error", () => {
      requests.delete(request);
      if (performance.now() <= end) settle(sentAt, false);
    });
    requests.add(request);
    request.end(body);
  };

  const fill = (): void => {
    if (performance.now() > end) return;
    while (inFlight < controller.limit) send();
  };

  const stop = setTimeout(() => {
    result.finalLimit = controller.limit;
    for (const request of requests) request.destroy();
    agent.destroy();
    finish();
  }, end - started);
  fill();
  await done;
  clearTimeout(stop);
  return result;
}
