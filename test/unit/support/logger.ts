import { Writable } from 'node:stream';
import { createLogger } from '../../../src/log/logger.js';

/** A real pino logger writing into memory, so tests read exactly what would be printed. */
export function memoryLogger(level: 'trace' | 'debug' | 'info' | 'warn' = 'debug') {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const logger = createLogger({ level, destination });
  return { logger, lines, text: () => lines.join('\n') };
}
