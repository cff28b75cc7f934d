from clara_es.cli import main

main()
