#!/usr/bin/env node
// The CLI is written in TypeScript and run from source through tsx's loader,
// so `npx caption` works straight after `npm ci` with no build step.
import { register } from "tsx/esm/api";

register();
await import("../src/bin.ts");
