"""The `ecom-stream` command line: the one package that sits above both the Faust shell
(`streams`) and the offline tools (`backtest`), so neither imports the other."""
