import { EndpointNotFoundError } from "../errors.js";

/**
 * vLLM, SGLang and Ollama serve the OpenAI routes under /v1 only, so a base URL without it meets a
 * 404 on every request; say what the URL most likely should have been.
 */
export function routeNotFound(
  baseUrl: string,
  message: string,
  headers: Headers,
): EndpointNotFoundError {
  const hint = /\/v1$/.test(baseUrl)
    ? "check the base URL: it must be the part before /chat/completions"
    : `did you mean ${baseUrl}/v1?`;
  return new EndpointNotFoundError(
    "endpoint_not_found",
    `${baseUrl}/chat/completions answered HTTP 404 (${message || "not found"}): no chat-completions route there; ${hint}`,
    { status: 404, headers },
  );
}

/** Whether a 404's message is about the model, not the route; the URL echoed in it does not count. */
export function aboutModel(message: string, url: string): boolean {
  let text = message;
  try {
    text = text.split(new URL(url).pathname).join(" ");
  } catch {
    // An unparsable URL never reaches here; fetch would have refused it.
  }
  return /\bmodels?\b/i.test(text.split(url).join(" "));
}
