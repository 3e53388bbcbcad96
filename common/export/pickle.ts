// Just enough of Python's pickle (protocol 2) for PyTorch state dicts: tuples, strings, ints, bools,
// None, module globals, REDUCE calls, persistent ids and (Ordered)dicts. The writer emits the same
// opcodes torch.save does, minus the memo (BINPUT/BINGET), which is optional; the reader also accepts
// the memo so it can read files written by torch itself.

export type PickleValue =
  | null
  | boolean
  | number
  | string
  | { kind: 'tuple'; items: PickleValue[] }
  | { kind: 'global'; module: string; name: string }
  | { kind: 'call'; fn: PickleValue; args: PickleValue[] }
  | { kind: 'persistent'; id: PickleValue }
  | { kind: 'dict'; ordered: boolean; entries: Array<[PickleValue, PickleValue]> };

export const tuple = (...items: PickleValue[]): PickleValue => ({ kind: 'tuple', items });
export const global = (module: string, name: string): PickleValue => ({ kind: 'global', module, name });
export const call = (fn: PickleValue, ...args: PickleValue[]): PickleValue => ({ kind: 'call', fn, args });
export const persistent = (id: PickleValue): PickleValue => ({ kind: 'persistent', id });
export const orderedDict = (entries: Array<[PickleValue, PickleValue]> = []): PickleValue => ({ kind: 'dict', ordered: true, entries });

const OP = {
  MARK: 0x28, // (
  STOP: 0x2e, // .
  BININT: 0x4a, // J
  BININT1: 0x4b, // K
  BININT2: 0x4d, // M
  NONE: 0x4e, // N
  BINPERSID: 0x51, // Q
  REDUCE: 0x52, // R
  BINUNICODE: 0x58, // X
  EMPTY_DICT: 0x7d, // }
  BINGET: 0x68, // h
  LONG_BINGET: 0x6a, // j
  BINPUT: 0x71, // q
  LONG_BINPUT: 0x72, // r
  SETITEM: 0x73, // s
  TUPLE: 0x74, // t
  SETITEMS: 0x75, // u
  EMPTY_TUPLE: 0x29, // )
  GLOBAL: 0x63, // c
  PROTO: 0x80,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  LONG1: 0x8a,
} as const;

/** Serialize one value as a complete protocol-2 pickle (PROTO ... STOP). */
export function dumpPickle(value: PickleValue): Buffer {
  const out: Buffer[] = [Buffer.from([OP.PROTO, 2])];
  const byte = (...b: number[]): void => void out.push(Buffer.from(b));
  const emit = (v: PickleValue): void => {
    if (v === null) byte(OP.NONE);
    else if (typeof v === 'boolean') byte(v ? OP.NEWTRUE : OP.NEWFALSE);
    else if (typeof v === 'number') emitInt(v);
    else if (typeof v === 'string') {
      const s = Buffer.from(v, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(s.length);
      out.push(Buffer.from([OP.BINUNICODE]), len, s);
    } else if (v.kind === 'tuple') {
      const n = v.items.length;
      if (n === 0) return byte(OP.EMPTY_TUPLE);
      if (n > 3) byte(OP.MARK);
      v.items.forEach(emit);
      byte(n > 3 ? OP.TUPLE : [OP.TUPLE1, OP.TUPLE2, OP.TUPLE3][n - 1]);
    } else if (v.kind === 'global') {
      out.push(Buffer.from(`c${v.module}\n${v.name}\n`, 'utf8'));
    } else if (v.kind === 'call') {
      emit(v.fn);
      emit(tuple(...v.args));
      byte(OP.REDUCE);
    } else if (v.kind === 'persistent') {
      emit(v.id);
      byte(OP.BINPERSID);
    } else {
      if (v.ordered) emit(call(global('collections', 'OrderedDict')));
      else byte(OP.EMPTY_DICT);
      if (v.entries.length === 0) return;
      byte(OP.MARK);
      for (const [k, val] of v.entries) {
        emit(k);
        emit(val);
      }
      byte(OP.SETITEMS);
    }
  };
  const emitInt = (n: number): void => {
    if (!Number.isSafeInteger(n)) throw new Error(`pickle: ${n} is not an integer`);
    if (n >= 0 && n < 0x100) return byte(OP.BININT1, n);
    if (n >= 0 && n < 0x10000) return byte(OP.BININT2, n & 0xff, n >> 8);
    if (n >= -0x80000000 && n <= 0x7fffffff) {
      const b = Buffer.alloc(5);
      b[0] = OP.BININT;
      b.writeInt32LE(n, 1);
      return void out.push(b);
    }
    // LONG1: little-endian two's complement, as few bytes as keep the sign
    const bytes: number[] = [];
    let rest = BigInt(n);
    do {
      bytes.push(Number(rest & 0xffn));
      rest >>= 8n;
    } while (!((rest === 0n && bytes[bytes.length - 1] < 0x80) || (rest === -1n && bytes[bytes.length - 1] >= 0x80)));
    byte(OP.LONG1, bytes.length, ...bytes);
  };
  emit(value);
  byte(OP.STOP);
  return Buffer.concat(out);
}

const MARK = Symbol('mark');
type StackItem = PickleValue | typeof MARK;

/** Inverse of dumpPickle for the opcodes above; REDUCE on collections.OrderedDict builds a dict. */
export function loadPickle(buf: Buffer): PickleValue {
  const stack: StackItem[] = [];
  const memo = new Map<number, PickleValue>();
  let pos = 0;
  const need = (n: number): void => {
    if (pos + n > buf.length) throw new Error(`pickle: truncated at byte ${pos}`);
  };
  const pop = (): PickleValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK) throw new Error(`pickle: stack underflow at byte ${pos}`);
    return v;
  };
  const popToMark = (): PickleValue[] => {
    const at = stack.lastIndexOf(MARK);
    if (at < 0) throw new Error(`pickle: MARK missing at byte ${pos}`);
    const items = stack.splice(at) as PickleValue[];
    return items.slice(1);
  };
  const readLine = (): string => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0) throw new Error('pickle: unterminated GLOBAL');
    const s = buf.subarray(pos, end).toString('utf8');
    pos = end + 1;
    return s;
  };
  const setItems = (pairs: PickleValue[]): void => {
    const target = stack[stack.length - 1];
    if (target === MARK || target === null || typeof target !== 'object' || target.kind !== 'dict') throw new Error('pickle: SETITEM(S) on a non-dict');
    for (let i = 0; i + 1 < pairs.length; i += 2) target.entries.push([pairs[i], pairs[i + 1]]);
  };

  for (;;) {
    need(1);
    const op = buf[pos++];
    switch (op) {
      case OP.PROTO: need(1); pos += 1; break;
      case OP.STOP: return pop();
      case OP.MARK: stack.push(MARK); break;
      case OP.NONE: stack.push(null); break;
      case OP.NEWTRUE: stack.push(true); break;
      case OP.NEWFALSE: stack.push(false); break;
      case OP.BININT1: need(1); stack.push(buf[pos]); pos += 1; break;
      case OP.BININT2: need(2); stack.push(buf.readUInt16LE(pos)); pos += 2; break;
      case OP.BININT: need(4); stack.push(buf.readInt32LE(pos)); pos += 4; break;
      case OP.LONG1: {
        need(1);
        const n = buf[pos++];
        need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[pos + i]);
        if (n > 0 && buf[pos + n - 1] >= 0x80) v -= 1n << BigInt(8 * n);
        pos += n;
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new Error(`pickle: integer ${v} exceeds 2^53`);
        stack.push(Number(v));
        break;
      }
      case OP.BINUNICODE: {
        need(4);
        const n = buf.readUInt32LE(pos);
        pos += 4;
        need(n);
        stack.push(buf.subarray(pos, pos + n).toString('utf8'));
        pos += n;
        break;
      }
      case OP.GLOBAL: {
        const module = readLine();
        stack.push(global(module, readLine()));
        break;
      }
      case OP.EMPTY_TUPLE: stack.push(tuple()); break;
      case OP.TUPLE1: stack.push(tuple(pop())); break;
      case OP.TUPLE2: { const b = pop(); stack.push(tuple(pop(), b)); break; }
      case OP.TUPLE3: { const c = pop(); const b = pop(); stack.push(tuple(pop(), b, c)); break; }
      case OP.TUPLE: stack.push(tuple(...popToMark())); break;
      case OP.EMPTY_DICT: stack.push({ kind: 'dict', ordered: false, entries: [] }); break;
      case OP.SETITEM: { const v = pop(); setItems([pop(), v]); break; }
      case OP.SETITEMS: setItems(popToMark()); break;
      case OP.BINPERSID: stack.push(persistent(pop())); break;
      case OP.REDUCE: {
        const args = pop();
        const fn = pop();
        if (args === null || typeof args !== 'object' || args.kind !== 'tuple') throw new Error('pickle: REDUCE arguments are not a tuple');
        const isOrderedDict = fn !== null && typeof fn === 'object' && fn.kind === 'global' && fn.module === 'collections' && fn.name === 'OrderedDict';
        stack.push(isOrderedDict && args.items.length === 0 ? orderedDict() : call(fn, ...args.items));
        break;
      }
      case OP.BINPUT: need(1); memo.set(buf[pos++], stack[stack.length - 1] as PickleValue); break;
      case OP.LONG_BINPUT: need(4); memo.set(buf.readUInt32LE(pos), stack[stack.length - 1] as PickleValue); pos += 4; break;
      case OP.BINGET:
      case OP.LONG_BINGET: {
        const wide = op === OP.LONG_BINGET;
        need(wide ? 4 : 1);
        const key = wide ? buf.readUInt32LE(pos) : buf[pos];
        pos += wide ? 4 : 1;
        if (!memo.has(key)) throw new Error(`pickle: memo key ${key} was never stored`);
        stack.push(memo.get(key) as PickleValue);
        break;
      }
      default:
        throw new Error(`pickle: opcode 0x${op.toString(16)} at byte ${pos - 1} is not supported by this reader`);
    }
  }
}
