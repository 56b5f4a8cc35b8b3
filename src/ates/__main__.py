from ates.cli import main

main()
