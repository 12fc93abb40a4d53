"""dapi-mock: a faithful local fake of Binance COIN-M futures around POST /dapi/v1/leverage."""
