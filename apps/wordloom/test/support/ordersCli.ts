/**
 * A user's own `loomtrace` entry point: the explorer's CLI with the orders pipeline declared
 * (how an application hands its declarations to `runCli`). Run by the tests as a process.
 */
import { runCli } from '@loomtrace/explorer/cli';
import { OrderSummarySink, ordersPipeline } from './orders.js';

process.exit(await runCli(process.argv.slice(2), { databaseUrl: process.env['DATABASE_URL'], pipelines: (pool) => [ordersPipeline(new OrderSummarySink(pool))] }));
