import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import { splitMemberInput } from "../archive/containers.js";
import { MemberLocator } from "../archive/locate.js";
import { readMember } from "../archive/read-member.js";
import { latestRows } from "../sinks/out-file/latest-rows.js";
import { readRecords } from "../sinks/out-file/read.js";
import { temporaryPath } from "../sinks/write-whole.js";
import type { OutputFormat } from "../types.js";
import { statOrNull } from "../util/folders.js";
import { PAGE_SCRIPT, PAGE_STYLE } from "./page-assets.js";
import {
  clipLabel,
  countFailure,
  countRow,
  emptyReportSummary,
  type ReportSummary,
  reportFailureOf,
  reportRowOf,
  scriptSafeJson,
} from "./report-data.js";
import { ThumbnailMaker } from "./thumbnails.js";

export interface ReportRequest {
  /** OUT of a run, and its format. */
  output: string;
  format: OutputFormat;
  /** The errors file beside OUT; absent is no failure. */
  errorsPath: string;
  /** The page to write. */
  page: string;
  /** Rows name images relative to this folder (where the run ran). */
  cwd: string;
  onProgress?: (rows: number, thumbnails: ThumbnailMaker) => void;
}

export interface ReportResult {
  summary: ReportSummary;
  /** The folder beside the page holding its thumbnails. */
  thumbnails: string;
  /** Lines of OUT or the errors file that were no record (damage, not a torn last line). */
  skipped: number;
  made: number;
  reused: number;
  unreadable: number;
}

/** The folder of thumbnails beside a page, as browsers name one saved with its files. */
export function thumbnailFolder(page: string): string {
  const parsed = path.parse(page);
  return path.join(parsed.dir, `${parsed.name}_files`);
}

/**
 * Writes one self-contained HTML page (its script and style inline, no network at view time)
 * over OUT and its errors file, with thumbnails in a folder beside it. Rows stream from OUT to the
 * page as they are read, so memory stays flat however long OUT is; the page is written to a
 * temporary name and renamed, so it is whole or absent.
 */
export async function writeReport(request: ReportRequest): Promise<ReportResult> {
  const folder = thumbnailFolder(request.page);
  await mkdir(folder, { recursive: true });
  const thumbnails = new ThumbnailMaker(folder);
  const summary = emptyReportSummary();
  const temporary = temporaryPath(request.page);
  const out = createWriteStream(temporary);
  const write = async (text: string) => {
    if (!out.write(text)) await once(out, "drain");
  };
  const pageDir = path.dirname(path.resolve(request.page));
  let skipped = 0;
  const onBad = () => {
    skipped += 1;
  };
  const folderName = path.basename(folder);
  const members = new MemberLocator();
  try {
    await write(head(path.basename(request.output)));
    await write('<script type="application/json" id="rows">[');
    let rows = 0;
    let base: string | null = null;
    // An image replaced by a later row (a redo not yet rewritten into OUT) is shown once, as it is now.
    const latest = await latestRows(
      () => readRecords(request.output, request.format),
      (record) => (typeof record.path === "string" ? record.path : null),
    );
    let index = 0;
    for await (const record of readRecords(request.output, request.format, onBad)) {
      if (!latest(record, index++)) continue;
      const row = reportRowOf(record);
      if (!row) continue;
      // Rows name images relative to where the run ran: here, or else where OUT is.
      // An image inside a shard or a Parquet file is found by its container's path.
      const file = splitMemberInput(row.path)?.container ?? row.path;
      base ??= (await statOrNull(path.resolve(request.cwd, file)))
        ? request.cwd
        : (await statOrNull(path.resolve(path.dirname(request.output), file)))
          ? path.dirname(request.output)
          : request.cwd;
      const absPath = path.resolve(base, row.path);
      const sha256 = typeof record.sha256 === "string" ? record.sha256 : null;
      const inside = file === row.path ? null : await members.locate(absPath, row.path);
      const read = inside ? () => readMember(inside) : undefined;
      const thumb = `${encodeURIComponent(folderName)}/${await thumbnails.add(absPath, sha256, read)}`;
      countRow(summary, { ...row, thumb });
      // Short keys: at 100,000 rows the page's size is mostly these.
      const shown = {
        p: row.path,
        c: row.caption,
        w: row.width,
        h: row.height,
        pt: row.promptTokens,
        ct: row.completionTokens,
        l: row.latencyMs,
        f: row.flags,
        k: row.copy,
        t: thumb,
        // An image inside a shard links to the shard: a browser opens no member of it.
        o: linkTo(pageDir, path.resolve(base, file)),
        // Only in a clip's row: JSON leaves an undefined key out, so an image's row costs nothing.
        v: row.video ? clipLabel(row.video) : undefined,
      };
      await write(`${rows > 0 ? "," : ""}\n${scriptSafeJson(shown)}`);
      rows += 1;
      if (rows % 500 === 0) request.onProgress?.(rows, thumbnails);
    }
    await write("]</script>\n");
    await write('<script type="application/json" id="failures">[');
    let failures = 0;
    if (await statOrNull(request.errorsPath)) {
      for await (const record of readRecords(request.errorsPath, "jsonl", onBad)) {
        const failure = reportFailureOf(record);
        if (!failure) continue;
        countFailure(summary, failure);
        const shown = {
          p: failure.path,
          c: failure.code,
          m: failure.message,
          o: linkTo(pageDir, path.resolve(base ?? request.cwd, failure.path)),
        };
        await write(`${failures > 0 ? "," : ""}\n${scriptSafeJson(shown)}`);
        failures += 1;
      }
    }
    await write("]</script>\n");
    await thumbnails.finish();
    request.onProgress?.(rows, thumbnails);
    await write(
      `<script type="application/json" id="summary">${scriptSafeJson(summary)}</script>\n`,
    );
    await write(`<script>${PAGE_SCRIPT}</script>\n</body>\n</html>\n`);
    out.end();
    await once(out, "finish");
    await rename(temporary, request.page);
  } catch (error) {
    out.destroy();
    await rm(temporary, { force: true });
    throw error;
  }
  return {
    summary,
    thumbnails: folder,
    skipped,
    made: thumbnails.made,
    reused: thumbnails.reused,
    unreadable: thumbnails.failed,
  };
}

/**
 * A relative link from the page to an image, every segment percent-encoded: a path from OUT is
 * untrusted text, and one spelt like `javascript:…` must stay a file name.
 */
function linkTo(pageDir: string, absPath: string): string {
  const relative = path.relative(pageDir, absPath).split(path.sep);
  return ["."]
    .concat(relative.map((segment) => (segment === ".." ? ".." : encodeURIComponent(segment))))
    .join("/");
}

function head(title: string): string {
  const safeTitle = title.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>caption report: ${safeTitle}</title>
<style>${PAGE_STYLE}</style>
</head>
<body>
<header>
  <h1>caption report: <span id="title"></span></h1>
  <div id="counts"></div>
  <div class="charts"><figure><figcaption>Latency (ms)</figcaption><div id="latency-chart"></div></figure><figure><figcaption>Caption length (characters)</figcaption><div id="length-chart"></div></figure></div>
  <div class="controls">
    <input id="search" type="search" placeholder="Search captions and paths" aria-label="Search captions and paths">
    <select id="filter" aria-label="Show">
      <option value="all">all captioned</option>
      <option value="flagged">flagged</option>
      <option value="truncated">truncated</option>
      <option value="failed">failed</option>
    </select>
    <span id="shown"></span>
  </div>
</header>
<main id="grid"></main>
<nav id="pager"></nav>
<section id="failures-section"><h2>Failures</h2><table id="failures-table"><thead><tr><th>file</th><th>code</th><th>message</th></tr></thead><tbody></tbody></table></section>
`;
}
