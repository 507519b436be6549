// Types of scripts/demo.mjs for the tests that import it.
import type { Server } from 'node:http';

export function buildIfNeeded(log?: (line: string) => void): boolean;
export function serveDemo(o?: {
  dir?: string;
  port?: number;
  host?: string;
  onRequest?: (r: { method: string | undefined; path: string; range: string | null }) => void;
}): Promise<{ server: Server; url: string; close: () => Promise<void> }>;
