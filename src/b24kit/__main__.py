from b24kit.cli.app import main

main()
