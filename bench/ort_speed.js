#!/usr/bin/env node
// ONNX Runtime (CPU) inference speed of an ONNX file, for bench/reference_tables.py.
//
// Usage: ort_speed.js MODEL.onnx N C H W THREADS ITERATIONS
// Prints images/s on random input (speed does not depend on the values), after one warm-up run:
// the median of 9 rounds of ITERATIONS runs.
'use strict';
const path = require('path');
const ort = require(path.join(__dirname, '..', 'tests', 'ort', 'node_modules', 'onnxruntime-node'));

async function main() {
  const [modelPath, n, c, h, w, threads, iterations] = process.argv.slice(2);
  const dims = [n, c, h, w].map(Number);
  const data = new Float32Array(dims.reduce((a, b) => a * b)).map(() => Math.random() * 2 - 1);
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: Number(threads), interOpNumThreads: 1, graphOptimizationLevel: 'all'});
  const feeds = {input: new ort.Tensor('float32', data, dims)};
  await session.run(feeds);
  const speeds = [];
  for (let round = 0; round < 9; ++round) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < Number(iterations); ++i) await session.run(feeds);
    speeds.push(dims[0] * Number(iterations) / (Number(process.hrtime.bigint() - start) / 1e9));
  }
  speeds.sort((a, b) => a - b);
  console.log(speeds[4].toFixed(1));
}

main().catch((error) => {
  console.error(String(error));
  process.exit(1);
});
