// Change one symbol's leverage with ccxt's binancecoinm, as a Node user would:
// a client for `dapi-contract fuzz-client -- node set_leverage.js`.
// It reads the DAPI_* environment the kit sets and exits 0 only when the change succeeded.
'use strict';

const fs = require('node:fs');
const ccxt = require('ccxt');

// Every API URL ccxt knows, pointed at the mock with its original path.
function atMock(urls, baseUrl) {
  if (typeof urls === 'string') return baseUrl + new URL(urls).pathname;
  if (urls === null || typeof urls !== 'object') return urls;
  return Object.fromEntries(Object.entries(urls).map(([key, url]) => [key, atMock(url, baseUrl)]));
}

async function main() {
  const env = process.env;
  const exchange = new ccxt.binancecoinm({
    apiKey: env.DAPI_API_KEY,
    // A PEM as the secret makes ccxt sign with RSA or Ed25519.
    secret: env.DAPI_API_SECRET ?? fs.readFileSync(env.DAPI_PRIVATE_KEY_FILE, 'utf8'),
    timeout: 10000,
    urls: { api: atMock(new ccxt.binancecoinm().urls.api, env.DAPI_BASE_URL) },
  });
  await exchange.loadTimeDifference(); // stamp requests with the server's clock
  await exchange.loadMarkets();
  const market = Object.values(exchange.markets).find((m) => m.id === env.DAPI_SYMBOL);
  if (market === undefined) throw new Error(`${env.DAPI_SYMBOL} is not listed`);
  const answer = await exchange.setLeverage(Number(env.DAPI_LEVERAGE), market.symbol);
  console.log(JSON.stringify(answer));
}

main().catch((error) => {
  console.error(`leverage not changed: ${error}`);
  process.exit(1);
});
