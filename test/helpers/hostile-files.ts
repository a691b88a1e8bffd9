import { execFileSync } from "node:child_process";
import { chmod, mkdir, open, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { crc32, deflateSync } from "node:zlib";
import sharp from "sharp";

/** What the CLI must make of one hostile input: a caption row, or an errors-file row with a code. */
export interface HostileCase {
  kind: string;
  /** Display path as it appears in OUT or the errors file. */
  path: string;
  expect: { caption: true } | { error: string };
}

/** Extra checks for cases with no row of their own. */
export interface HostileCorpus {
  cases: HostileCase[];
  /** Inputs to pass on the command line (the folder plus explicit files). */
  inputs: string[];
  /** Removed by the test once the first request arrives: it vanishes between discovery and reading. */
  vanishing: string;
  /** Unreadable to this user, root included (see makeUnreadableFile). */
  unreadable: string;
  /** Kinds that end in neither row, with what must hold instead. */
  noRowKinds: string[];
}

export function pngChunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/**
 * A valid 1-bit 20000×20000 PNG: 400 megapixels of black in about 50 KB. With `rows` less than
 * 20000 the pixel data stops after that many rows: the header still says 400 megapixels, but a
 * decoder that went on to read the pixels would fail on the missing ones.
 */
export function decompressionBomb(rows = 20_000): Buffer {
  const side = 20_000;
  const header = Buffer.alloc(13);
  header.writeUInt32BE(side, 0);
  header.writeUInt32BE(side, 4);
  header[8] = 1; // bit depth
  header[9] = 0; // greyscale
  const pixels = Buffer.alloc((1 + side / 8) * Math.min(rows, side));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", header),
    pngChunk("IDAT", deflateSync(pixels)),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

/** Whether opening `file` for reading is refused with a permission error. */
async function refusesToRead(file: string): Promise<boolean> {
  try {
    await (await open(file, "r")).close();
    return false;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "EACCES" || code === "EPERM";
  }
}

/**
 * Makes `file` a file that this user cannot read, root included, so that the case runs where the
 * tests run as root (CI does). A mode-000 file is enough for anyone else; root reads any file
 * whatever its mode, so for root `file` becomes a symbolic link to a write-only kernel attribute
 * (`/sys/bus/<bus>/uevent`, mode 0200), which the kernel refuses to open for reading even to root
 * (EACCES), while stat sees a non-empty regular file as for any photo.
 */
export async function makeUnreadableFile(file: string, bytes: Buffer | string): Promise<void> {
  await writeFile(file, bytes);
  await chmod(file, 0o000);
  if (await refusesToRead(file)) return;
  await rm(file);
  const buses = await readdir("/sys/bus").catch(() => []);
  for (const bus of buses.sort()) {
    const attribute = `/sys/bus/${bus}/uevent`;
    if (await refusesToRead(attribute)) {
      await symlink(attribute, file);
      return;
    }
  }
  throw new Error(
    `cannot make a file this user cannot read: a mode-000 file is readable here and no write-only /sys/bus/*/uevent was found`,
  );
}

const solid = (width: number, height: number, channels: 3 | 4 = 3) =>
  sharp({
    create: {
      width,
      height,
      channels,
      background: channels === 4 ? { r: 200, g: 40, b: 90, alpha: 0.5 } : { r: 30, g: 140, b: 200 },
    },
  });

/**
 * Builds a folder of every kind of bad or odd input we know of under `root/name`. Each case says
 * what a correct run makes of it.
 */
export async function makeHostileCorpus(root: string, name = "hostile"): Promise<HostileCorpus> {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  const cases: HostileCase[] = [];
  const at = (file: string) => path.join(dir, file);
  const add = (kind: string, file: string, expect: HostileCase["expect"]) =>
    cases.push({ kind, path: `${name}/${file}`, expect });
  const good = await solid(64, 48).jpeg().toBuffer();

  await writeFile(at("zero-byte.jpg"), "");
  add("zero-byte file", "zero-byte.jpg", { error: "empty_file" });

  await writeFile(at("truncated.jpg"), good.subarray(0, Math.floor(good.length / 2)));
  add("truncated JPEG", "truncated.jpg", { error: "corrupt_image" });

  const png = await solid(64, 48).png().toBuffer();
  const brokenPng = Buffer.from(png);
  const idat = brokenPng.indexOf("IDAT");
  for (let i = idat + 8; i < idat + 24 && i < brokenPng.length - 12; i += 1)
    brokenPng[i] = (brokenPng[i] ?? 0) ^ 0xff;
  await writeFile(at("corrupt-chunk.png"), brokenPng);
  add("PNG with a corrupt chunk", "corrupt-chunk.png", { error: "corrupt_image" });

  await writeFile(
    at("random-bytes.png"),
    Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251)),
  );
  add("random bytes named .png", "random-bytes.png", { error: "unsupported_format" });

  await writeFile(at("notes.jpg"), "These are my holiday notes, not a photo.\n");
  add("text file named .jpg", "notes.jpg", { error: "unsupported_format" });

  await writeFile(
    at("page.webp"),
    "<!doctype html><html><body><h1>404 Not Found</h1></body></html>\n",
  );
  add("HTML file named .webp", "page.webp", { error: "unsupported_format" });

  await writeFile(
    at("logo.png"),
    '<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32"><circle cx="16" cy="16" r="12"/></svg>\n',
  );
  add("SVG named .png", "logo.png", { error: "unsupported_format" });

  await writeFile(at("bomb.png"), decompressionBomb());
  add("decompression bomb (20000×20000 PNG of 50 KB)", "bomb.png", { error: "image_too_large" });

  await writeFile(
    at("phone.heic"),
    Buffer.concat([
      Buffer.from([0, 0, 0, 24]),
      Buffer.from("ftypheic\0\0\0\0mif1heic", "latin1"),
      Buffer.alloc(200, 7),
    ]),
  );
  add("HEIC (HEVC) photo", "phone.heic", { error: "unsupported_format" });

  await solid(64, 48, 4).toColourspace("rgb16").png().toFile(at("sixteen-bit.png"));
  add("16-bit PNG", "sixteen-bit.png", { caption: true });

  await solid(64, 48).toColourspace("cmyk").jpeg().toFile(at("cmyk.jpg"));
  add("CMYK JPEG", "cmyk.jpg", { caption: true });

  await solid(64, 48, 4).toColourspace("b-w").png().toFile(at("grey-alpha.png"));
  add("grey + alpha PNG", "grey-alpha.png", { caption: true });

  const frames = await Promise.all(
    [0, 1, 2].map((i) =>
      sharp({
        create: { width: 32, height: 32, channels: 3, background: { r: i * 100, g: 0, b: 0 } },
      })
        .raw()
        .toBuffer(),
    ),
  );
  await sharp(Buffer.concat(frames), {
    raw: { width: 32, height: 96, channels: 3, pageHeight: 32 },
  })
    .gif({ loop: 0, delay: [100, 100, 100] })
    .toFile(at("animated.gif"));
  add("animated GIF", "animated.gif", { caption: true });

  await solid(1, 1).png().toFile(at("one-pixel.png"));
  add("1×1 image", "one-pixel.png", { caption: true });

  await solid(20_000, 200).jpeg().toFile(at("panorama.jpg"));
  add("extreme panorama 20000×200", "panorama.jpg", { caption: true });

  await mkdir(at("folder.jpg"));
  await writeFile(at("folder.jpg/inside.png"), png);
  add("a directory named x.jpg (walked as a folder)", "folder.jpg/inside.png", { caption: true });

  // A symlink loop has no row of its own: the test checks that no path through it shows up.
  await mkdir(at("loop"));
  await symlink("..", at("loop/up"));

  await symlink("nowhere.jpg", at("dangling.jpg"));
  add("broken symlink", "dangling.jpg", { error: "file_missing" });

  await writeFile(at("zzz-vanishes.jpg"), good);
  add("file that disappears between discovery and reading", "zzz-vanishes.jpg", {
    error: "file_missing",
  });

  await makeUnreadableFile(at("unreadable.jpg"), good);
  add("unreadable file (no read permission)", "unreadable.jpg", { error: "permission_denied" });

  try {
    execFileSync("mkfifo", [at("pipe.jpg")]);
    add("a named pipe called .jpg (must not hang)", "pipe.jpg", { error: "not_a_file" });
  } catch {
    // No mkfifo here: that kind is simply not covered.
  }

  const names = [
    "with space.jpg",
    "comma,name.jpg",
    'double "quote".jpg',
    "single 'quote'.jpg",
    "new\nline.jpg",
    "=formula.jpg",
    "-dash.jpg",
    "+plus.jpg",
    "@at.jpg",
    "ünïcødé.jpg",
    "emoji 📷🎉.jpg",
    "中文名.jpg",
  ];
  for (const [i, file] of names.entries()) {
    // Distinct bytes per file, or they would be captioned as copies of one another.
    await solid(40 + i, 30)
      .jpeg()
      .toFile(at(file));
    add(`file name ${JSON.stringify(file)}`, file, { caption: true });
  }

  await solid(50, 50).jpeg().toFile(at("UPPER.JPG"));
  add("upper-case extension .JPG", "UPPER.JPG", { caption: true });
  await solid(52, 50).png().toFile(at("Mixed.PnG"));
  add("mixed-case extension .PnG", "Mixed.PnG", { caption: true });

  await solid(54, 50).jpeg().toFile(at("twice.jpg"));
  add("duplicate input: the same file matched by the folder and by name", "twice.jpg", {
    caption: true,
  });

  await writeFile(at("copy-a.jpg"), await readFile(at("UPPER.JPG")));
  add("identical bytes under another name (sent once, both get rows)", "copy-a.jpg", {
    caption: true,
  });

  return {
    cases,
    inputs: [name, `${name}/twice.jpg`, `./${name}/twice.jpg`],
    vanishing: at("zzz-vanishes.jpg"),
    unreadable: at("unreadable.jpg"),
    noRowKinds: ["symlink loop (loop/up → ..): walked without hanging, each image listed once"],
  };
}
