/**
 * What rows and the summary call an endpoint: its host and port (the scheme's port when the URL
 * names none). Endpoints that share both are told apart by their paths.
 */
export function endpointLabels(baseUrls: readonly string[]): string[] {
  const hostPort = baseUrls.map((baseUrl) => {
    const url = new URL(baseUrl);
    const port = url.port || (url.protocol === "https:" ? "443" : "80");
    return `${url.hostname}:${port}`;
  });
  return hostPort.map((label, index) =>
    hostPort.indexOf(label) === hostPort.lastIndexOf(label)
      ? label
      : `${label}${new URL(baseUrls[index] ?? "").pathname}`,
  );
}
