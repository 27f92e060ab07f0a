import { render, type Format } from './index.js';
import { Tally, type ObjectReport, type Totals } from './model.js';
import { summaryOf, textOf } from './text.js';

/**
 * A report written as the objects are judged, so that `check`'s memory does not grow with the
 * tree: text and JSON go out object by object (the same bytes `render` writes for all of them at
 * once); SARIF and JUnit are built at the end by their libraries, from the reports without their
 * patches and diffs, which neither format shows.
 */
export interface ReportStream {
  /** Adds a report; returns the text to write now ('' for nothing yet). */
  add(report: ObjectReport): string;
  /** The rest of the report. */
  end(): Promise<string>;
  readonly totals: Totals;
}

/** `JSON.stringify(value, null, 2)` as it reads nested `depth` levels deep. */
const nested = (value: unknown, depth: number) =>
  JSON.stringify(value, null, 2).replaceAll('\n', `\n${'  '.repeat(depth)}`);

export function reportStream(format: Format): ReportStream {
  const tally = new Tally();
  let count = 0;
  const kept: ObjectReport[] = [];
  return {
    get totals() {
      return tally.totals;
    },
    add(r) {
      tally.add(r);
      count++;
      switch (format) {
        case 'text': {
          const lines = textOf(r);
          return lines.length > 0 ? lines.join('\n') + '\n' : '';
        }
        case 'json':
          return `${count === 1 ? '{\n  "reports": [' : ','}\n    ${nested(r, 2)}`;
        default: {
          if (r.findings.length === 0 && r.policies.length === 0) return '';
          const slim = { ...r };
          delete slim.patch;
          delete slim.diff;
          kept.push(slim);
          return '';
        }
      }
    },
    async end() {
      switch (format) {
        case 'text':
          return summaryOf(tally.totals) + '\n';
        case 'json':
          return `${count === 0 ? '{\n  "reports": []' : '\n  ]'},\n  "totals": ${nested(tally.totals, 1)}\n}\n`;
        default:
          return render(kept, format);
      }
    },
  };
}
