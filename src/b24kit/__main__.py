from b24kit.cli.entry import main

main()
