from export_kit.cli import main

main()
