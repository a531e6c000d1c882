from gradwatch.cli import main

main()
