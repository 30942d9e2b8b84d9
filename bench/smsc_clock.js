// Preloaded into the test SMSC (node -r): stamps every JSON line it prints with "t", the wall
// clock in seconds, so the benchmarks can compare it with the AMI peer's clock on one machine.
'use strict';

const write = process.stdout.write.bind(process.stdout);
process.stdout.write = (chunk, ...rest) => {
  if (typeof chunk === 'string' && chunk.startsWith('{"')) {
    const now = (performance.timeOrigin + performance.now()) / 1000;
    chunk = `{"t":${now.toFixed(6)},` + chunk.slice(1);
  }
  return write(chunk, ...rest);
};
