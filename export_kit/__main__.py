from export_kit.cli.app import main

main()
