// Kubernetes resource quantities ("100m", "128Mi", "1e3") as k8s.io/apimachinery's
// resource.ParseQuantity reads them (pkg/api/resource/quantity.go, v0.37), which both Istio's
// injector (pkg/kube/inject/validate.go validateResourceQuantity) and the API server use. Ported
// from that source: the same text is accepted or refused, and compares the same.

/** An exact value: `sign × digits × 10^exponent`, after ParseQuantity's rounding and cap. */
export interface Quantity {
  readonly negative: boolean;
  readonly digits: bigint;
  readonly exponent: number;
}

const NANO = -9;
const MAX_INT64 = (1n << 63n) - 1n;
const DECIMAL: Readonly<Record<string, number>> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY: Readonly<Record<string, number>> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const SUFFIX_LETTERS = 'eEinumkKMGTP';
const isDigit = (c: string) => c >= '0' && c <= '9';
const int32 = (n: bigint) => Number(BigInt.asIntN(32, n));

interface Parts {
  positive: boolean;
  /** The number as written, sign included (what the slow path reads with inf.Dec). */
  value: string;
  num: string;
  denom: string;
  suffix: string;
}

/** parseQuantityString: sign, digits, fraction, suffix; undefined for ErrFormatWrong. */
function parts(str: string): Parts | undefined {
  let positive = true;
  let pos = 0;
  const end = str.length;
  if (str[0] === '-') {
    positive = false;
    pos++;
  } else if (str[0] === '+') {
    pos++;
  }
  while (pos < end && str[pos] === '0') pos++;
  if (pos >= end) return { positive, value: '0', num: '0', denom: '', suffix: '' };
  let i = pos;
  while (i < end && isDigit(str.charAt(i))) i++;
  if (i >= end) return { positive, value: str, num: str.slice(pos), denom: '', suffix: '' };
  const num = str.slice(pos, i) || '0';
  pos = i;
  let denom = '';
  if (str[pos] === '.') {
    pos++;
    i = pos;
    while (i < end && isDigit(str.charAt(i))) i++;
    denom = str.slice(pos, i);
    if (i >= end) return { positive, value: str, num, denom, suffix: '' };
    pos = i;
  }
  const value = str.slice(0, pos);
  const suffixStart = pos;
  while (pos < end && SUFFIX_LETTERS.includes(str.charAt(pos))) pos++;
  if (pos >= end) return { positive, value, num, denom, suffix: str.slice(suffixStart) };
  if (str[pos] === '-' || str[pos] === '+') pos++;
  while (pos < end && isDigit(str.charAt(pos))) pos++;
  // A character that is neither a suffix letter nor part of an exponent.
  return pos >= end ? { positive, value, num, denom, suffix: str.slice(suffixStart) } : undefined;
}

/** suffixHandler.interpret: base and exponent, or undefined for ErrSuffix. */
function interpret(suffix: string): { base: 10 | 2; exponent: number; binary: boolean } | undefined {
  const dec = DECIMAL[suffix];
  if (dec !== undefined && Object.hasOwn(DECIMAL, suffix)) return { base: 10, exponent: dec, binary: false };
  const bin = BINARY[suffix];
  if (bin !== undefined && Object.hasOwn(BINARY, suffix)) return { base: 2, exponent: bin, binary: true };
  // "e3", "E-2": strconv.ParseInt(rest, 10, 64), then truncated to int32 as Go converts it.
  if (suffix.length > 1 && (suffix[0] === 'e' || suffix[0] === 'E')) {
    const rest = suffix.slice(1);
    if (!/^[+-]?[0-9]+$/.test(rest)) return undefined;
    const n = BigInt(rest);
    if (n > MAX_INT64 || n < -MAX_INT64 - 1n) return undefined;
    return { base: 10, exponent: int32(n), binary: false };
  }
  return undefined;
}

/** `⌈|digits × 10^exponent| / 10^-9⌉ × 10^-9`: the slow path rounds non-zero values up to a nano. */
function roundUpToNano(digits: bigint, exponent: number): { digits: bigint; exponent: number } {
  if (digits === 0n || exponent >= NANO) return { digits, exponent };
  const drop = NANO - exponent;
  const text = digits.toString();
  // Smaller than a nano: one nano.
  if (drop > text.length) return { digits: 1n, exponent: NANO };
  const unit = 10n ** BigInt(drop);
  const kept = digits / unit;
  return { digits: digits % unit === 0n ? kept : kept + 1n, exponent: NANO };
}

/** resource.ParseQuantity: the exact value, or undefined where it returns an error. */
export function parseQuantity(str: string): Quantity | undefined {
  if (str === '') return undefined;
  const p = parts(str);
  if (!p) return undefined;
  const suffix = interpret(p.suffix);
  if (!suffix) return undefined;
  const { positive, num, denom } = p;

  // The fast path: an int64 amount and a scale of at least nano.
  let precision: number;
  let mantissa = 1n;
  let scale = 0;
  if (!suffix.binary) {
    scale = suffix.exponent;
    precision = 18 - (num.length + denom.length);
  } else if (suffix.exponent >= 0 && denom === '') {
    mantissa = 1n << BigInt(suffix.exponent);
    precision = 15 - num.length - Math.trunc((suffix.exponent * 3) / 10) - 1;
  } else {
    precision = -1;
  }
  if (precision >= 0) {
    scale = int32(BigInt(scale) - BigInt(denom.length));
    if (scale >= NANO) {
      const shifted = BigInt(num + denom) * mantissa;
      if (shifted <= MAX_INT64) return { negative: !positive && shifted !== 0n, digits: shifted, exponent: scale };
    }
  }

  // The slow path: inf.Dec reads the number as written, which needs a digit ("." has none).
  if (!/[0-9]/.test(p.value)) return undefined;
  const unsigned = p.value.replace(/^[+-]/, '');
  const [whole = '', fraction = ''] = unsigned.split('.');
  let digits = BigInt(`${whole}${fraction}` || '0');
  let exponent = -fraction.length;
  if (suffix.base === 10) exponent = exponent + suffix.exponent;
  else digits = digits << BigInt(suffix.exponent);
  ({ digits, exponent } = roundUpToNano(digits, exponent));
  if (suffix.binary && compareMagnitude(digits, exponent, MAX_INT64, 0) > 0) {
    digits = MAX_INT64;
    exponent = 0;
  }
  return { negative: !positive && digits !== 0n, digits, exponent };
}

/** Compares `a × 10^ea` with `b × 10^eb` (non-negative), without building huge powers of ten. */
function compareMagnitude(a: bigint, ea: number, b: bigint, eb: number): number {
  if (a === 0n || b === 0n) return a === b ? 0 : a === 0n ? -1 : 1;
  const la = a.toString().length + ea;
  const lb = b.toString().length + eb;
  if (la !== lb) return la < lb ? -1 : 1;
  // Same order of magnitude: the exponents differ by at most the digits' lengths.
  const shift = ea - eb;
  const x = shift > 0 ? a * 10n ** BigInt(shift) : a;
  const y = shift < 0 ? b * 10n ** BigInt(-shift) : b;
  return x === y ? 0 : x < y ? -1 : 1;
}

/** Quantity.Cmp: -1, 0 or 1. */
export function compareQuantities(a: Quantity, b: Quantity): number {
  if (a.negative !== b.negative) return a.negative ? -1 : 1;
  const m = compareMagnitude(a.digits, a.exponent, b.digits, b.exponent);
  return a.negative ? -m : m;
}
