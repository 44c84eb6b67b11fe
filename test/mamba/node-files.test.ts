// The atomic writer (mamba/node-files.ts) and the writers built on it: a write that succeeds leaves
// only the file; one that fails (in the write callback, or in the rename) leaves no temporary file
// and whatever was at the path before, byte for byte.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicTempPath, atomicWrite, atomicWriteSync, writeTextAtomic } from '../../mamba/node-files.ts';
import { writeSafetensors } from '../../mamba/safetensors.ts';
import { writeAtomic, writeJsonAtomic } from '../../steps/files.ts';
import { withTempDir } from '../helpers/temp-dir.ts';

const withDir = (body: (dir: string) => Promise<void> | void) => withTempDir('mamba-atomic-', body);

async function rejects(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await p.then(
    () => assert.unreachable(`expected an error matching ${pattern}`),
    (e: Error) => assert.match(e.message, pattern),
  );
}

function throws(f: () => void, pattern: RegExp): void {
  try {
    f();
  } catch (e) {
    assert.match((e as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected an error matching ${pattern}`);
}

test('the temporary name is beside the file', () => {
  assert.is(atomicTempPath('/a/b/c.json'), `/a/b/c.json.tmp-${process.pid}`);
});

test(
  'atomicWrite: the file appears whole, no temporary file is left',
  withDir(async (dir) => {
    const path = join(dir, 'f.txt');
    let seen = '';
    await atomicWrite(path, async (tmp) => {
      seen = tmp;
      await writeFile(tmp, 'new');
      assert.not.ok(fs.existsSync(path), 'nothing at the path before the rename');
    });
    assert.is(seen, atomicTempPath(path));
    assert.is(readFileSync(path, 'utf-8'), 'new');
    assert.equal(readdirSync(dir), ['f.txt']);
  }),
);

test(
  'atomicWrite: a callback that rejects after writing part of the file leaves the old file and no temporary',
  withDir(async (dir) => {
    const path = join(dir, 'f.txt');
    writeFileSync(path, 'old');
    await rejects(
      atomicWrite(path, async (tmp) => {
        await writeFile(tmp, 'half');
        throw new Error('disk on fire');
      }),
      /disk on fire/,
    );
    assert.is(readFileSync(path, 'utf-8'), 'old');
    assert.equal(readdirSync(dir), ['f.txt']);
  }),
);

test(
  'atomicWrite: a callback that fails before creating the temporary file reports its own error',
  withDir(async (dir) => {
    const path = join(dir, 'f.txt');
    await rejects(
      atomicWrite(path, async () => {
        throw new Error('nothing written');
      }),
      /nothing written/,
    );
    assert.equal(readdirSync(dir), []);
  }),
);

test(
  'atomicWrite: a failed rename (a folder at the path) removes the temporary file',
  withDir(async (dir) => {
    const path = join(dir, 'taken');
    fs.mkdirSync(path);
    writeFileSync(join(path, 'inside'), 'x');
    await rejects(
      atomicWrite(path, (tmp) => writeFile(tmp, 'new')),
      /EISDIR|ENOTEMPTY|EEXIST|EPERM/,
    );
    assert.equal(readdirSync(dir), ['taken']);
    assert.equal(readdirSync(path), ['inside']);
  }),
);

test(
  'atomicWriteSync: success, and a throwing callback leaves the old file and no temporary',
  withDir((dir) => {
    const path = join(dir, 'f.bin');
    atomicWriteSync(fs, path, (tmp) => writeFileSync(tmp, new Uint8Array([1, 2])));
    assert.equal([...readFileSync(path)], [1, 2]);
    throws(
      () =>
        atomicWriteSync(fs, path, (tmp) => {
          writeFileSync(tmp, 'half');
          throw new Error('stopped');
        }),
      /stopped/,
    );
    assert.equal([...readFileSync(path)], [1, 2]);
    assert.equal(readdirSync(dir), ['f.bin']);
  }),
);

test(
  'writeTextAtomic and steps/files.ts write through it',
  withDir(async (dir) => {
    await writeTextAtomic(join(dir, 'a.txt'), 'héllo\n');
    writeAtomic(join(dir, 'sub', 'b.txt'), 'b');
    writeJsonAtomic(join(dir, 'sub', 'c.json'), { x: [1] });
    assert.is(readFileSync(join(dir, 'a.txt'), 'utf-8'), 'héllo\n');
    assert.is(readFileSync(join(dir, 'sub', 'b.txt'), 'utf-8'), 'b');
    assert.is(readFileSync(join(dir, 'sub', 'c.json'), 'utf-8'), '{\n  "x": [\n    1\n  ]\n}\n');
    assert.equal(readdirSync(dir).sort(), ['a.txt', 'sub']);
    assert.equal(readdirSync(join(dir, 'sub')).sort(), ['b.txt', 'c.json']);
  }),
);

test(
  'writeSafetensors: a tensor that fails to encode mid-file leaves the old checkpoint and no temporary',
  withDir(async (dir) => {
    const path = join(dir, 'model.safetensors');
    await writeSafetensors(path, [{ name: 'a', dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }]);
    const before = readFileSync(path);
    await rejects(
      writeSafetensors(path, [
        { name: 'a', dtype: 'F32', shape: [2], data: new Float32Array([3, 4]) },
        { name: 'b', dtype: 'I32', shape: [1], data: [0.5] },
      ]),
      /tensor "b": value 0.5 at index 0 is not a representable integer/,
    );
    assert.ok(readFileSync(path).equals(before), 'the old file, byte for byte');
    assert.equal(readdirSync(dir), ['model.safetensors']);
  }),
);

test.run();
